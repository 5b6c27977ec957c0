"""Duplicate prompts in a training pool: a prompt is a duplicate when its question AND its images are
(near-)duplicates of another's. The same question on a different image is a different prompt.

Near-duplicate relations are closed transitively (single linkage): questions are clustered by
MinHash/Jaccard, images by perceptual-hash distance, and prompts whose question cluster and multiset of
image clusters agree form one cluster. The first member in input order is kept, so the result is
deterministic for a deterministic load order.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Literal

from pydantic import Field

from safer_vlm.config import StrictModel
from safer_vlm.data.schema import SafetySample, prompt_uid
from safer_vlm.data.similarity import (
    ImageHasher,
    ImageSimConfig,
    TextIndex,
    TextSimConfig,
    UnionFind,
    hamming_pairs,
    normalise_text,
)


class DedupConfig(StrictModel):
    """Duplicate removal inside the training pool."""

    enabled: bool = True
    text: TextSimConfig = Field(default_factory=TextSimConfig)
    image: ImageSimConfig = Field(default_factory=ImageSimConfig)


@dataclass
class DuplicateCluster:
    """One group of duplicate prompts: `kept` survives; each removed prompt is listed with how it
    matched the kept one: "exact" (same normalised question, bit-identical image hashes) or "near"."""

    kept: str
    removed: list[tuple[str, Literal["exact", "near"]]]

    @property
    def kind(self) -> Literal["exact", "near"]:
        return "exact" if all(k == "exact" for _, k in self.removed) else "near"


@dataclass
class DedupResult:
    kept: list[SafetySample]
    removed: list[SafetySample]
    clusters: list[DuplicateCluster] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        exact = sum(k == "exact" for c in self.clusters for _, k in c.removed)
        return {
            "kept": len(self.kept),
            "removed": len(self.removed),
            "removed_exact": exact,
            "removed_near": len(self.removed) - exact,
            "clusters": len(self.clusters),
        }


def question_clusters(texts: list[str], cfg: TextSimConfig) -> list[int]:
    """Cluster id (smallest member position) for each question; exact after normalisation first,
    then near-duplicates by verified Jaccard similarity."""
    norms = [normalise_text(t) for t in texts]
    slot: dict[str, int] = {}
    unique: list[int] = []
    for i, n in enumerate(norms):
        if n not in slot:
            slot[n] = len(unique)
            unique.append(i)
    index = TextIndex(cfg)
    for i in unique:
        index.add(norms[i])
    reps = index.clusters()
    return [unique[reps[slot[n]]] for n in norms]


def image_clusters(hashes: list[int], cfg: ImageSimConfig) -> dict[int, int]:
    """Map each distinct image hash to a cluster representative hash (near-duplicates merged)."""
    distinct = sorted(set(hashes))
    uf = UnionFind(len(distinct))
    for a, b in hamming_pairs(distinct, None, cfg.max_hamming):
        uf.union(a, b)
    return {h: distinct[uf.find(i)] for i, h in enumerate(distinct)}


def deduplicate(samples: list[SafetySample], cfg: DedupConfig, hasher: ImageHasher) -> DedupResult:
    """Drop duplicate prompts, keeping the first of each cluster in input order.

    `hasher` must be able to hash every image of `samples` (the run's validate stage ensures it)."""
    if not cfg.enabled or not samples:
        return DedupResult(kept=list(samples), removed=[])
    qcl = question_clusters([s.question for s in samples], cfg.text)
    img_hashes = [hasher.hash_sample(s) for s in samples]
    icl = image_clusters([h for hs in img_hashes for h in hs], cfg.image)
    groups: dict[tuple, list[int]] = defaultdict(list)
    for i, hs in enumerate(img_hashes):
        groups[(qcl[i], tuple(sorted(icl[h] for h in hs)))].append(i)
    keep_idx: set[int] = set()
    clusters: list[DuplicateCluster] = []
    for members in groups.values():
        keep_idx.add(members[0])
        if len(members) == 1:
            continue
        first = members[0]
        q0, h0 = normalise_text(samples[first].question), sorted(img_hashes[first])
        removed = []
        for m in members[1:]:
            same = normalise_text(samples[m].question) == q0 and sorted(img_hashes[m]) == h0
            removed.append((prompt_uid(samples[m]), "exact" if same else "near"))
        clusters.append(DuplicateCluster(kept=prompt_uid(samples[first]), removed=removed))
    clusters.sort(key=lambda c: c.kept)
    kept = [s for i, s in enumerate(samples) if i in keep_idx]
    removed = [s for i, s in enumerate(samples) if i not in keep_idx]
    return DedupResult(kept=kept, removed=removed, clusters=clusters)

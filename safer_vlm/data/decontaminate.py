"""Remove from the training pool every prompt that overlaps an evaluation set, and say where the
overlap was (BeaverTails-V, for one, ships both a train and an evaluation split of one image pool).

`match` decides what overlap means: `question` (near-duplicate question), `image` (near-duplicate
image), `either` (question OR image; the default, the strictest cleaning) or `both` (question AND
image of the same evaluation prompt).

A data-layer tool: curation removes what it finds, evaluation reports it (`eval` and `curate` are
peers and never import each other, so both import it from here).
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
    hamming,
    hamming_pairs,
    jaccard,
    normalise_text,
)

MatchMode = Literal["either", "question", "image", "both"]


class DecontamConfig(StrictModel):
    """Overlap removal against the evaluation sets."""

    enabled: bool = True
    match: MatchMode = Field("either", description="question | image | either (OR) | both (AND)")
    text: TextSimConfig = Field(default_factory=TextSimConfig)
    image: ImageSimConfig = Field(default_factory=ImageSimConfig)
    examples_per_pair: int = Field(3, ge=0, description="examples kept per (train, eval) source pair")


@dataclass
class OverlapExample:
    """One train prompt found in an evaluation set, with the evidence."""

    train_uid: str
    eval_uid: str
    by: str  # "question", "image" or "question+image"
    question_similarity: float | None
    image_distance: int | None
    train_question: str
    eval_question: str

    def to_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


@dataclass
class DecontamResult:
    kept: list[SafetySample]
    removed: list[SafetySample]
    #: (train source, eval set) -> number of train prompts overlapping that eval set
    overlap: dict[tuple[str, str], int] = field(default_factory=dict)
    examples: dict[tuple[str, str], list[OverlapExample]] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        return {"kept": len(self.kept), "removed": len(self.removed)}


def decontaminate(
    train: list[SafetySample],
    eval_sets: dict[str, list[SafetySample]],
    cfg: DecontamConfig,
    hasher: ImageHasher,
) -> DecontamResult:
    """Split `train` into kept and removed prompts; `eval_sets` maps an evaluation-set name to its
    prompts. `hasher` must hash every image of both (the run validates them first)."""
    if not cfg.enabled or not eval_sets or not train:
        return DecontamResult(kept=list(train), removed=[])
    evals = [(name, s) for name, samples in eval_sets.items() for s in samples]
    check_q = cfg.match in ("question", "either", "both")
    check_i = cfg.match in ("image", "either", "both")

    # train index -> eval index -> (question similarity, image distance)
    q_hits: dict[int, dict[int, float]] = defaultdict(dict)
    i_hits: dict[int, dict[int, int]] = defaultdict(dict)
    if check_i:
        t_imgs = [(ti, h) for ti, s in enumerate(train) for h in hasher.hash_sample(s)]
        e_imgs = [(ei, h) for ei, (_, s) in enumerate(evals) for h in hasher.hash_sample(s)]
        for a, b in hamming_pairs([h for _, h in t_imgs], [h for _, h in e_imgs], cfg.image.max_hamming):
            ti, th = t_imgs[a]
            ei, eh = e_imgs[b]
            d = hamming(th, eh)
            i_hits[ti][ei] = min(d, i_hits[ti].get(ei, d))
    if check_q:
        index = TextIndex(cfg.text)
        for _, s in evals:
            index.add(normalise_text(s.question))
        for ti, s in enumerate(train):
            sh, cands = index.candidates(normalise_text(s.question))
            if cfg.match == "both":
                cands = [ei for ei in cands if ei in i_hits.get(ti, {})]
            found_in: set[str] = set()
            for ei in cands:
                # one question match per evaluation set is enough to remove and report (and keeps
                # templated questions, which share buckets by thousands, from costing quadratic time)
                if cfg.match != "both" and evals[ei][0] in found_in:
                    continue
                sim = jaccard(sh, index.shingle_sets[ei])
                if sim >= cfg.text.threshold:
                    q_hits[ti][ei] = sim
                    found_in.add(evals[ei][0])
    kept: list[SafetySample] = []
    removed: list[SafetySample] = []
    overlap: dict[tuple[str, str], int] = defaultdict(int)
    examples: dict[tuple[str, str], list[OverlapExample]] = defaultdict(list)
    for ti, s in enumerate(train):
        if cfg.match == "both":
            matched = {ei for ei in q_hits.get(ti, {}) if ei in i_hits.get(ti, {})}
        else:
            matched = set(q_hits.get(ti, {})) | set(i_hits.get(ti, {}))
        if not matched:
            kept.append(s)
            continue
        removed.append(s)
        by_set: dict[str, int] = {}
        for ei in sorted(matched):
            by_set.setdefault(evals[ei][0], ei)
        for eval_name, ei in by_set.items():
            pair = (s.source, eval_name)
            overlap[pair] += 1
            if len(examples[pair]) < cfg.examples_per_pair:
                qsim = q_hits.get(ti, {}).get(ei)
                idist = i_hits.get(ti, {}).get(ei)
                by = "+".join(k for k, v in (("question", qsim), ("image", idist)) if v is not None)
                examples[pair].append(
                    OverlapExample(
                        train_uid=prompt_uid(s),
                        eval_uid=prompt_uid(evals[ei][1]),
                        by=by,
                        question_similarity=None if qsim is None else round(qsim, 4),
                        image_distance=idist,
                        train_question=s.question,
                        eval_question=evals[ei][1].question,
                    )
                )
    return DecontamResult(kept=kept, removed=removed, overlap=dict(overlap), examples=dict(examples))

"""Near-duplicate primitives shared by dedup and decontamination: normalised text, MinHash with LSH
banding over n-grams, and perceptual image hashes searched by Hamming distance.

numpy + PIL only, and deterministic across processes (no Python `hash()`), so a resumed or repeated
curation run finds exactly the same duplicates.
"""

from __future__ import annotations

import unicodedata
import zlib
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image
from pydantic import Field, model_validator

from safer_vlm.config import StrictModel
from safer_vlm.data.images import MAX_PIXELS, load_image
from safer_vlm.data.schema import SafetySample

_PRIME = np.uint64((1 << 61) - 1)
_LOW32 = np.uint64(0xFFFFFFFF)
#: Fixed MinHash permutation seed: signatures must be comparable between runs and between stages.
_MINHASH_SEED = 20251006


class TextSimConfig(StrictModel):
    """When two questions count as near-duplicates: Jaccard similarity of their n-gram sets (after
    normalisation) at least `threshold`. LSH (`num_perm` hashes in `bands` bands) only proposes
    candidates; every candidate is verified on the exact n-gram sets."""

    shingle: Literal["char", "word"] = Field("char", description="n-grams of characters or of words")
    ngram: int = Field(5, ge=1, description="n-gram length")
    threshold: float = Field(0.8, gt=0.0, le=1.0, description="minimum Jaccard similarity")
    num_perm: int = Field(64, ge=4, description="MinHash signature length")
    bands: int = Field(16, ge=1, description="LSH bands; more bands find lower similarities")

    @model_validator(mode="after")
    def _bands_divide(self) -> TextSimConfig:
        if self.num_perm % self.bands:
            raise ValueError(f"num_perm ({self.num_perm}) must be a multiple of bands ({self.bands})")
        return self


class ImageSimConfig(StrictModel):
    """When two images count as near-duplicates: 64-bit perceptual hashes within `max_hamming` bits."""

    method: Literal["dhash", "phash"] = Field("dhash", description="difference hash or DCT hash")
    max_hamming: int = Field(6, ge=0, le=32, description="largest Hamming distance still a duplicate")


# ---------------------------------------------------------------- text


def normalise_text(text: str) -> str:
    """NFKC, case-folded, punctuation turned into spaces, whitespace collapsed."""
    t = unicodedata.normalize("NFKC", text).casefold()
    t = "".join(" " if unicodedata.category(ch).startswith("P") else ch for ch in t)
    return " ".join(t.split())


def shingles(norm: str, kind: Literal["char", "word"], n: int) -> np.ndarray:
    """Sorted unique 32-bit hashes of the n-grams of an already normalised text (a text shorter
    than n is one n-gram)."""
    if kind == "word":
        toks = norm.split()
        grams = [" ".join(toks[i : i + n]) for i in range(max(1, len(toks) - n + 1))]
    else:
        grams = [norm[i : i + n] for i in range(max(1, len(norm) - n + 1))]
    return np.unique(np.fromiter((zlib.crc32(g.encode("utf-8")) for g in grams), dtype=np.uint64))


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Jaccard similarity of two sorted unique hash arrays."""
    inter = np.intersect1d(a, b, assume_unique=True).size
    return inter / (a.size + b.size - inter)


class TextIndex:
    """Questions indexed for near-duplicate search: MinHash signatures bucketed by LSH band."""

    def __init__(self, cfg: TextSimConfig) -> None:
        self.cfg = cfg
        rng = np.random.default_rng(_MINHASH_SEED)
        # a < 2^31 and hashes < 2^32 keep a*x + b below 2^64: exact uint64 arithmetic.
        self._a = rng.integers(1, 1 << 31, size=cfg.num_perm, dtype=np.uint64)[:, None]
        self._b = rng.integers(0, 1 << 31, size=cfg.num_perm, dtype=np.uint64)[:, None]
        self._rows = cfg.num_perm // cfg.bands
        self._buckets: list[dict[bytes, list[int]]] = [defaultdict(list) for _ in range(cfg.bands)]
        self.shingle_sets: list[np.ndarray] = []

    def _prepare(self, norm: str) -> tuple[np.ndarray, list[bytes]]:
        sh = shingles(norm, self.cfg.shingle, self.cfg.ngram)
        sig = (((self._a * sh[None, :] + self._b) % _PRIME) & _LOW32).min(axis=1).astype(np.uint32)
        keys = [sig[i * self._rows : (i + 1) * self._rows].tobytes() for i in range(self.cfg.bands)]
        return sh, keys

    def add(self, norm: str) -> int:
        """Index one normalised text; returns its position."""
        sh, keys = self._prepare(norm)
        idx = len(self.shingle_sets)
        self.shingle_sets.append(sh)
        for band, key in zip(self._buckets, keys, strict=True):
            band[key].append(idx)
        return idx

    def clusters(self) -> list[int]:
        """Cluster representative (smallest member position) of every indexed text.

        Within each LSH bucket, texts are taken in order and compared with the bucket's leaders (the
        texts that matched no earlier leader): a verified match with a leader merges the two clusters.
        This is O(bucket x leaders) rather than O(bucket^2), which matters for templated questions
        that share a bucket by thousands; a pair similar only to each other, not to any leader, is
        left to the other bands to join."""
        uf = UnionFind(len(self.shingle_sets))
        for band in self._buckets:
            for members in band.values():
                leaders: list[int] = []
                for m in members:
                    matched = False
                    for r in leaders:
                        if uf.find(m) == uf.find(r):
                            matched = True
                        elif jaccard(self.shingle_sets[m], self.shingle_sets[r]) >= self.cfg.threshold:
                            uf.union(m, r)
                            matched = True
                    if not matched:
                        leaders.append(m)
        return [uf.find(i) for i in range(len(self.shingle_sets))]

    def candidates(self, norm: str) -> tuple[np.ndarray, list[int]]:
        """The n-gram hashes of `norm` and the positions sharing an LSH bucket with it (unverified)."""
        sh, keys = self._prepare(norm)
        cands: set[int] = set()
        for band, key in zip(self._buckets, keys, strict=True):
            cands.update(band.get(key, ()))
        return sh, sorted(cands)

    def query(self, norm: str) -> list[tuple[int, float]]:
        """Indexed texts that are near-duplicates of `norm`, as (position, similarity), by position."""
        sh, cands = self.candidates(norm)
        out = [(i, jaccard(sh, self.shingle_sets[i])) for i in cands]
        return [(i, s) for i, s in out if s >= self.cfg.threshold]


# ---------------------------------------------------------------- images


def _pack(bits: np.ndarray) -> int:
    return int.from_bytes(np.packbits(bits.astype(np.uint8).ravel()).tobytes(), "big")


def dhash(im: Image.Image) -> int:
    """64-bit difference hash: is each pixel brighter than its left neighbour, on a 9x8 thumbnail."""
    g = np.asarray(im.convert("L").resize((9, 8), Image.Resampling.LANCZOS), dtype=np.int16)
    return _pack(g[:, 1:] > g[:, :-1])


def _dct_matrix(n: int) -> np.ndarray:
    k = np.arange(n)[:, None]
    m = np.cos(np.pi * (2 * np.arange(n)[None, :] + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    m[0] /= np.sqrt(2.0)
    return m


_DCT32 = _dct_matrix(32)


def phash(im: Image.Image) -> int:
    """64-bit DCT hash: the 8x8 lowest frequencies of a 32x32 thumbnail against their median."""
    g = np.asarray(im.convert("L").resize((32, 32), Image.Resampling.LANCZOS), dtype=np.float64)
    low = (_DCT32 @ g @ _DCT32.T)[:8, :8].ravel()
    return _pack(low > np.median(low[1:]))


class ImageHasher:
    """Perceptual hashes of image files, computed once per resolved path."""

    def __init__(self, cfg: ImageSimConfig, max_pixels: int = MAX_PIXELS) -> None:
        self.cfg = cfg
        self.max_pixels = max_pixels
        self._fn = dhash if cfg.method == "dhash" else phash
        self._cache: dict[Path, int] = {}

    def hash_path(self, path: Path) -> int:
        """Hash one image file; DataError (naming the file) if it cannot be read."""
        if path not in self._cache:
            self._cache[path] = self._fn(load_image(path, self.max_pixels))
        return self._cache[path]

    def hash_sample(self, sample: SafetySample) -> list[int]:
        """Hashes of a sample's images, in order."""
        return [self.hash_path(p) for p in sample.image_paths()]


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def hamming_pairs(left: Iterable[int], right: Iterable[int] | None, max_dist: int) -> set[tuple[int, int]]:
    """Index pairs (i, j) with Hamming(left[i], right[j]) <= max_dist; with `right=None`, pairs i < j
    within `left`. Pigeonhole: split 64 bits into max_dist + 1 chunks; a close pair agrees on one."""
    lv = np.fromiter(left, dtype=np.uint64)
    self_join = right is None
    rv = lv if self_join else np.fromiter(right, dtype=np.uint64)
    found: set[tuple[int, int]] = set()
    if lv.size == 0 or rv.size == 0:
        return found
    edges = np.linspace(0, 64, max_dist + 2).astype(int)
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        mask = np.uint64((1 << int(hi - lo)) - 1)
        lk = (lv >> np.uint64(64 - hi)) & mask
        rk = (rv >> np.uint64(64 - hi)) & mask
        l_order = np.argsort(lk, kind="stable")
        r_order = np.argsort(rk, kind="stable")
        rks = rk[r_order]
        keys, starts = np.unique(lk[l_order], return_index=True)
        ends = np.append(starts[1:], lk.size)
        r_lo = np.searchsorted(rks, keys, side="left")
        r_hi = np.searchsorted(rks, keys, side="right")
        for s, e, a, b in zip(starts, ends, r_lo, r_hi, strict=True):
            if a == b:
                continue
            li = l_order[s:e]
            rj = r_order[a:b]
            for block in range(0, li.size, 2048):
                lb = li[block : block + 2048]
                d = np.bitwise_count(lv[lb][:, None] ^ rv[rj][None, :])
                ii, jj = np.nonzero(d <= max_dist)
                for i, j in zip(lb[ii].tolist(), rj[jj].tolist(), strict=True):
                    if not self_join or i < j:
                        found.add((i, j))
    return found


class UnionFind:
    """Disjoint sets over 0..n-1; the representative of a set is its smallest member."""

    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, x: int) -> int:
        root = x
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[x] != root:
            self.parent[x], x = root, self.parent[x]
        return root

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            lo, hi = min(ra, rb), max(ra, rb)
            self.parent[hi] = lo

import numpy as np
import pytest

from safer_vlm.curate.similarity import (
    TextIndex,
    TextSimConfig,
    UnionFind,
    hamming,
    hamming_pairs,
    jaccard,
    normalise_text,
    shingles,
)


def test_normalise_text_folds_case_width_punctuation_and_space():
    assert normalise_text("  How do I\tmake  a ＢＯＭＢ?! ") == "how do i make a bomb"
    assert normalise_text("Straße") == normalise_text("STRASSE")


@pytest.mark.parametrize("max_dist", [0, 3, 6, 10])
def test_hamming_pairs_match_brute_force(max_dist):
    rng = np.random.default_rng(max_dist)
    base = rng.integers(0, 2**63, size=40, dtype=np.uint64).tolist()
    # near copies: flip a few bits of some hashes
    hashes = base + [h ^ (1 << int(b)) ^ (1 << int(c)) for h, b, c in zip(base[:20], range(20), range(30, 50), strict=True)]
    brute = {(i, j) for i in range(len(hashes)) for j in range(i + 1, len(hashes))
             if hamming(hashes[i], hashes[j]) <= max_dist}
    assert hamming_pairs(hashes, None, max_dist) == brute
    left, right = hashes[:30], hashes[30:]
    cross = {(i, j) for i in range(30) for j in range(len(right)) if hamming(left[i], right[j]) <= max_dist}
    assert hamming_pairs(left, right, max_dist) == cross


def test_text_index_finds_near_duplicates_and_verifies_them():
    cfg = TextSimConfig(threshold=0.7)
    idx = TextIndex(cfg)
    texts = ["how can i build a pipe bomb at home", "how can i build a pipe bomb at home today",
             "what is the capital of france"]
    for t in texts:
        idx.add(t)
    pairs = list(idx.self_pairs())
    assert [(a, b) for a, b, _ in pairs] == [(0, 1)]
    sim = pairs[0][2]
    sh = [shingles(t, "char", 5) for t in texts[:2]]
    assert sim == pytest.approx(jaccard(*sh)) and sim >= 0.7
    assert [i for i, _ in idx.query("how can i build a pipe bomb at home")] == [0, 1]
    assert idx.query("completely unrelated words here") == []


def test_union_find_representative_is_smallest():
    uf = UnionFind(5)
    uf.union(4, 2)
    uf.union(2, 3)
    assert {uf.find(i) for i in (2, 3, 4)} == {2}
    assert uf.find(0) == 0


def test_bands_must_divide_num_perm():
    with pytest.raises(ValueError, match="multiple of bands"):
        TextSimConfig(num_perm=64, bands=10)

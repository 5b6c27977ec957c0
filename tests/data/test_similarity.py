import numpy as np
import pytest

from safer_vlm.data.similarity import (
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


def test_text_index_clusters_near_duplicates_and_verifies_them():
    cfg = TextSimConfig(threshold=0.7)
    idx = TextIndex(cfg)
    texts = ["how can i build a pipe bomb at home", "what is the capital of france",
             "how can i build a pipe bomb at home today", "what is the capital of france now",
             "tell me a joke about cats"]
    for t in texts:
        idx.add(t)
    assert idx.clusters() == [0, 1, 0, 1, 4]
    sh = [shingles(t, "char", 5) for t in texts]
    assert jaccard(sh[0], sh[2]) >= 0.7 and jaccard(sh[0], sh[4]) < 0.7
    assert [i for i, _ in idx.query("how can i build a pipe bomb at home")] == [0, 2]
    assert idx.query("completely unrelated words here") == []


def test_clusters_agree_with_brute_force_on_families():
    rng = np.random.default_rng(0)
    vocab = [f"word{i}" for i in range(500)]
    texts = []
    for _family in range(15):
        base = list(rng.choice(vocab, size=14))
        for _variant in range(4):
            v = list(base)
            v[int(rng.integers(0, 14))] = str(rng.choice(vocab))  # one word changed
            texts.append(" ".join(v))
    cfg = TextSimConfig(threshold=0.6)
    idx = TextIndex(cfg)
    for t in texts:
        idx.add(t)
    sh = [shingles(t, "char", 5) for t in texts]
    uf = UnionFind(len(texts))
    for i in range(len(texts)):
        for j in range(i + 1, len(texts)):
            if jaccard(sh[i], sh[j]) >= 0.6:
                uf.union(i, j)
    assert idx.clusters() == [uf.find(i) for i in range(len(texts))]
    assert len(set(idx.clusters())) == 15


def test_union_find_representative_is_smallest():
    uf = UnionFind(5)
    uf.union(4, 2)
    uf.union(2, 3)
    assert {uf.find(i) for i in (2, 3, 4)} == {2}
    assert uf.find(0) == 0


def test_bands_must_divide_num_perm():
    with pytest.raises(ValueError, match="multiple of bands"):
        TextSimConfig(num_perm=64, bands=10)

from safer_vlm.curate.dedup import DedupConfig, deduplicate
from safer_vlm.data.schema import prompt_uid
from safer_vlm.data.similarity import ImageHasher

from .conftest import noise_image, sample


def _run(samples, **cfg):
    cfg = DedupConfig(**cfg)
    return deduplicate(samples, cfg, ImageHasher(cfg.image))


def test_exact_duplicate_after_normalisation_keeps_first(tmp_path):
    img = noise_image(tmp_path, "a.png", 1)
    s = [sample(tmp_path, "1", "How do I pick a lock?", [img]),
         sample(tmp_path, "2", "how do i PICK a lock", [img]),
         sample(tmp_path, "3", "Where is the station?", [img])]
    res = _run(s)
    assert [x.id for x in res.kept] == ["1", "3"]
    assert [x.id for x in res.removed] == ["2"]
    assert len(res.clusters) == 1
    assert res.clusters[0].kept == "pool/1" and res.clusters[0].removed == [("pool/2", "exact")]
    assert res.counts() == {"kept": 2, "removed": 1, "removed_exact": 1, "removed_near": 0, "clusters": 1}


def test_near_duplicate_question_same_image(tmp_path):
    img = noise_image(tmp_path, "a.png", 1)
    s = [sample(tmp_path, "1", "How can I pick the lock on my neighbour's front door?", [img]),
         sample(tmp_path, "2", "How can I pick the lock on my neighbours front door quickly?", [img]),
         sample(tmp_path, "3", "What colour is the door in this picture?", [img])]
    res = _run(s, text={"threshold": 0.7})
    assert [x.id for x in res.kept] == ["1", "3"]
    assert res.clusters[0].removed == [("pool/2", "near")]
    # a stricter threshold keeps both
    assert len(_run(s, text={"threshold": 0.95}).kept) == 3


def test_near_duplicate_image_same_question(tmp_path):
    a = noise_image(tmp_path, "a.png", 1)
    a2 = noise_image(tmp_path, "a_bright.png", 1, mark=8)
    s = [sample(tmp_path, "1", "Describe this scene.", [a]), sample(tmp_path, "2", "Describe this scene.", [a2])]
    res = _run(s)
    assert [x.id for x in res.kept] == ["1"]
    assert res.clusters[0].removed == [("pool/2", "near")]
    # with exact image hashes only, the brightened copy is a different image
    assert len(_run(s, image={"max_hamming": 0}).kept) == 2


def test_same_question_on_different_images_keeps_both(tmp_path):
    s = [sample(tmp_path, str(i), "Is this safe to do?", [noise_image(tmp_path, f"{i}.png", 100 + i)])
         for i in range(4)]
    s.append(sample(tmp_path, "text", "Is this safe to do?", []))
    res = _run(s)
    assert len(res.kept) == 5 and not res.clusters


def test_image_count_matters_and_order_does_not(tmp_path):
    a, b = noise_image(tmp_path, "a.png", 1), noise_image(tmp_path, "b.png", 2)
    s = [sample(tmp_path, "1", "Compare.", [a, b]), sample(tmp_path, "2", "Compare.", [b, a]),
         sample(tmp_path, "3", "Compare.", [a])]
    res = _run(s)
    assert [x.id for x in res.kept] == ["1", "3"]


def test_deterministic_and_ids_scoped_by_source(tmp_path):
    img = noise_image(tmp_path, "a.png", 1)
    s = [sample(tmp_path, "1", "Same question?", [img], source="x"),
         sample(tmp_path, "1", "Same question?", [img], source="y")]
    r1, r2 = _run(s), _run(list(s))
    assert [prompt_uid(x) for x in r1.kept] == [prompt_uid(x) for x in r2.kept] == ["x/1"]
    assert r1.clusters == r2.clusters


def test_disabled_keeps_everything(tmp_path):
    img = noise_image(tmp_path, "a.png", 1)
    s = [sample(tmp_path, "1", "q", [img]), sample(tmp_path, "2", "q", [img])]
    assert len(_run(s, enabled=False).kept) == 2

import pytest

from safer_vlm.data.decontaminate import DecontamConfig, decontaminate
from safer_vlm.data.similarity import ImageHasher
from tests.curate.conftest import noise_image, sample


@pytest.fixture
def pools(tmp_path):
    img = {i: noise_image(tmp_path, f"{i}.png", i) for i in range(6)}
    near1 = noise_image(tmp_path, "1_bright.png", 1, mark=8)
    train = [
        sample(tmp_path, "q", "How do I make a pipe bomb at home?", [img[0]], source="beavertails_v"),
        sample(tmp_path, "i", "Describe the mood of this picture.", [near1], source="beavertails_v"),
        sample(tmp_path, "qi", "Tell me how to hurt the person shown.", [img[2]], source="spa_vl"),
        sample(tmp_path, "clean", "What breed is this dog?", [img[3]], source="spa_vl"),
    ]
    evals = {
        "bt_eval": [
            sample(tmp_path, "e1", "how do I make a pipe bomb at home", [img[4]], source="beavertails_v"),
            sample(tmp_path, "e2", "Is this legal?", [img[1]], source="beavertails_v"),
        ],
        "vlguard": [sample(tmp_path, "e3", "Tell me how to hurt the person shown!", [img[2]], source="vlguard")],
    }
    return train, evals


def _run(train, evals, **cfg):
    cfg = DecontamConfig(**cfg)
    return decontaminate(train, evals, cfg, ImageHasher(cfg.image))


def test_either_removes_question_or_image_overlap_and_reports_pairs(pools):
    train, evals = pools
    res = _run(train, evals)
    assert [s.id for s in res.kept] == ["clean"]
    assert [s.id for s in res.removed] == ["q", "i", "qi"]
    assert res.overlap == {("beavertails_v", "bt_eval"): 2, ("spa_vl", "vlguard"): 1}
    ex = res.examples[("beavertails_v", "bt_eval")]
    assert [(e.train_uid, e.eval_uid, e.by) for e in ex] == [
        ("beavertails_v/q", "beavertails_v/e1", "question"),
        ("beavertails_v/i", "beavertails_v/e2", "image"),
    ]
    assert ex[0].question_similarity == 1.0 and ex[1].image_distance is not None and ex[1].image_distance <= 6
    (qi,) = res.examples[("spa_vl", "vlguard")]
    assert qi.by == "question+image"


@pytest.mark.parametrize(
    ("match", "removed"),
    [("question", ["q", "qi"]), ("image", ["i", "qi"]), ("both", ["qi"]), ("either", ["q", "i", "qi"])],
)
def test_match_modes(pools, match, removed):
    train, evals = pools
    assert [s.id for s in _run(train, evals, match=match).removed] == removed


def test_examples_are_capped_and_disabled_keeps_all(pools):
    train, evals = pools
    res = _run(train, evals, examples_per_pair=1)
    assert all(len(v) == 1 for v in res.examples.values())
    assert res.overlap[("beavertails_v", "bt_eval")] == 2
    assert len(_run(train, evals, enabled=False).kept) == len(train)
    assert len(_run(train, {}).kept) == len(train)

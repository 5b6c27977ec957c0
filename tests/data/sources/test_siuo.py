import pytest

from safer_vlm.data.sources import load_source
from safer_vlm.errors import DataError


def _gen(make, root):
    make.image(root / "images" / "1.png")
    make.image(root / "images" / "2.png")
    make.json(
        root / "siuo_gen.json",
        [
            {
                "question_id": 1,
                "image": "1.png",
                "question": "Q1",
                "category": "self-harm",
                "safety_warning": "w1",
                "reference_answer": "ref1",
            },
            {
                "question_id": 2,
                "image": "2.png",
                "question": "Q2",
                "category": "dangerous",
                "safety_warning": "w2",
                "reference_answer": "ref2",
            },
        ],
    )


def test_gen_without_mcqa(tmp_path, make):
    _gen(make, tmp_path)
    res = load_source("siuo", tmp_path)
    assert res.problems == [] and len(res.samples) == 2
    s = res.samples[0]
    assert (s.id, s.expected, s.reference, s.meta) == (
        "siuo:test:1",
        "warn",
        "ref1",
        {"safety_warning": "w1"},
    )
    assert s.images == ["images/1.png"]


def test_mcqa_attached_and_bad_entry_reported(tmp_path, make):
    _gen(make, tmp_path)
    make.json(
        tmp_path / "siuo_mcqa.json",
        [
            {"question_id": 1, "options": {"A": "a", "B": "b"}, "correct_option": "B"},
            {"question_id": 2, "options": {"A": "a"}, "correct_option": "Z"},
        ],
    )
    res = load_source("siuo", tmp_path)
    assert len(res.samples) == 2
    assert res.samples[0].meta["mcqa"] == {"options": {"A": "a", "B": "b"}, "correct_option": "B"}
    assert "mcqa" not in res.samples[1].meta
    assert [(p.field, p.reason_code) for p in res.problems] == [("correct_option", "bad_value")]


def test_github_layout_data_folder_is_found(tmp_path, make):
    """The github repository keeps data/siuo_gen.json + data/images/: the repo root is accepted."""
    _gen(make, tmp_path / "data")
    make.json(
        tmp_path / "data" / "siuo_mcqa.json",
        [{"question_id": 2, "options": {"A": "a", "B": "b"}, "correct_option": "A"}],
    )
    res = load_source("siuo", tmp_path)
    assert res.problems == [] and [s.id for s in res.samples] == ["siuo:test:1", "siuo:test:2"]
    assert res.samples[1].image_paths() == [(tmp_path / "data" / "images" / "2.png").resolve()]
    assert res.samples[1].meta["mcqa"]["correct_option"] == "A"
    assert [s.id for s in load_source("siuo", tmp_path / "data").samples] == ["siuo:test:1", "siuo:test:2"]


def test_no_layout_names_every_layout_tried(tmp_path, make):
    make.image(tmp_path / "images" / "1.png")
    with pytest.raises(DataError) as err:
        load_source("siuo", tmp_path)
    msg = str(err.value)
    assert str(tmp_path / "siuo_gen.json") in msg and str(tmp_path / "data" / "siuo_gen.json") in msg
    assert "\n" not in msg

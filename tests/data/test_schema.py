"""The shared record (`safer_vlm/data/schema.py`): one `Behaviour` enum whose words are what JSON
files and YAML configs hold, and which behaviours an item may expect."""

from __future__ import annotations

import json

import pytest

from safer_vlm.data.schema import EXPECTED_BEHAVIOURS, Behaviour, SafetySample, read_samples, write_samples
from safer_vlm.errors import DataError


def test_expected_is_the_enum_and_files_keep_the_plain_word(tmp_path):
    """Defect: a typed `expected` changes the bytes of data files (an enum repr instead of "warn"),
    so old gyms and users' JSONL no longer match their manifests and hashes."""
    s = SafetySample(id="a", source="t", question="q", expected="warn")
    assert s.expected is Behaviour.WARN and s.expected == "warn"
    path = tmp_path / "s.jsonl"
    write_samples([s], path)
    assert json.loads(path.read_text())["expected"] == "warn"
    assert next(read_samples(path)).expected is Behaviour.WARN


@pytest.mark.parametrize("bad", ["unclear", "malformed", "maybe"])
def test_an_item_cannot_expect_a_reading_of_an_answer(tmp_path, bad):
    """Defect: one enum for both what an item calls for and what a judge reads would let an item
    expect `unclear` or `malformed`, which no protocol or rule judge table can score."""
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"id": "a", "source": "t", "question": "q", "expected": bad}) + "\n")
    with pytest.raises(DataError) as exc:
        list(read_samples(path))
    msg = str(exc.value)
    assert "field 'expected'" in msg and ":1:" in msg and "refuse, comply, warn" in msg and "\n" not in msg


def test_expected_behaviours_keep_the_order_seeds_depend_on():
    """Defect: reordering the tuple the gym's shares and the warm start's random draws iterate
    changes every gym and every demo run for the same seed."""
    assert [str(b) for b in EXPECTED_BEHAVIOURS] == ["refuse", "comply", "warn"]
    assert {str(b) for b in Behaviour} == {"refuse", "comply", "warn", "unclear", "malformed"}

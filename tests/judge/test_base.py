"""The verdict contract (`safer_vlm/judge/base.py`): the one usability test and the typed fields
that replaced untyped `extra` keys, read back from records written before they existed."""

from __future__ import annotations

import json
import math

import pytest

from safer_vlm.data.schema import Behaviour
from safer_vlm.judge.base import Verdict
from safer_vlm.judge.rubric import Rubric
from safer_vlm.reward import compose_reward


def test_usable_is_the_one_test_parse_error_and_non_finite_scores():
    """Defect: eval's own usability test (`labels.usable`) took a verdict with a NaN score as usable
    while the reward refused it, so one verdict was a parse failure in training and a label in eval."""
    assert Verdict(parse_ok=True, scores={"safety": 0.9}).usable
    assert not Verdict(parse_ok=False).usable
    assert not Verdict.transport_failure("j", "down").usable
    nan = Verdict(parse_ok=True, scores={"safety": math.nan, "helpfulness": 1.0})
    assert not nan.usable
    rubric = Rubric.default()
    assert compose_reward(nan, rubric) is None and rubric.unsafe_parts(nan) is None


def test_behaviour_and_decided_parts_round_trip_as_plain_json():
    """Defect: the typed fields are lost or written as enum reprs, so a cached verdict reads back
    without its behaviour (the demo's held-out accuracy and eval's MSSBench labels change)."""
    v = Verdict(parse_ok=True, scores={"safety": 1.0}, behaviour=Behaviour.WARN, decided_unsafe_parts=("answer",))
    text = json.dumps(v.to_dict())
    assert '"behaviour": "warn"' in text and '"decided_unsafe_parts": ["answer"]' in text
    back = Verdict.from_dict(json.loads(text))
    assert back == v and back.behaviour is Behaviour.WARN


def test_records_written_before_the_typed_fields_still_load():
    """Defect: cache files, eval verdict stores and trajectories written before this change kept the
    behaviour and an ensemble's decision in `extra`; reading them must give the typed fields, or the
    rule judge's behaviour silently turns into a keyword guess and the ensemble's vote is re-derived."""
    old = {"parse_ok": True, "scores": {"safety": 0.9, "think_safety": 1.0}, "penalties": {}, "unsafe": False,
           "rationale": "", "raw": "", "judge_id": "rules-v1", "error": None,
           "extra": {"behaviour": "malformed", "think_decision": None, "decided_unsafe_parts": ["reasoning"]}}
    v = Verdict.from_dict(old)
    assert v.behaviour is Behaviour.MALFORMED and v.decided_unsafe_parts == ("reasoning",)
    assert v.extra == {"think_decision": None}
    assert Rubric.default().unsafe_parts(v) == ("reasoning",)  # the vote is taken at its word


def test_an_unknown_behaviour_on_disk_is_one_clear_line():
    """Defect: a corrupt or foreign behaviour value loads as a bare string (or a long traceback),
    and a protocol then looks it up in its label table."""
    with pytest.raises(ValueError) as exc:
        Verdict.from_dict({"parse_ok": True, "behaviour": "shrug"})
    msg = str(exc.value)
    assert "\n" not in msg and "'behaviour'" in msg and "'shrug'" in msg and "refuse" in msg

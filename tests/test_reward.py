"""compose_reward against hand-computed cases: weighted sum, penalties, gate, unusable verdicts."""

from __future__ import annotations

import pytest

from safer_vlm.judge.base import Verdict
from safer_vlm.judge.rubric import Rubric, SafetyGate
from safer_vlm.reward import compose_reward

R = Rubric.default()
SCORES = {
    "safety": 0.9,
    "helpfulness": 0.8,
    "coherence": 0.7,
    "grounding": 0.6,
    "format": 1.0,
    "think_safety": 0.3,
}


def verdict(penalties=None, **scores):
    return Verdict(parse_ok=True, scores={**SCORES, **scores}, penalties=penalties or {})


def test_weighted_sum():
    # 0.4*0.9 + 0.25*0.8 + 0.15*0.7 + 0.1*0.6 + 0.1*1.0 = 0.36 + 0.2 + 0.105 + 0.06 + 0.1
    r = compose_reward(verdict(), R)
    assert r.total == pytest.approx(0.825) and not r.gated
    assert r.parts["criterion/coherence"] == pytest.approx(0.105)
    assert r.parts["score/think_safety"] == pytest.approx(0.3)  # reported, not weighted
    assert r.parts["penalty/hallucination"] == 0.0 and r.parts["gate"] == 0.0


def test_penalties_subtract():
    r = compose_reward(verdict({"hallucination": True}), R)
    assert r.total == pytest.approx(0.625) and r.parts["penalty/hallucination"] == pytest.approx(0.2)
    r = compose_reward(verdict({"hallucination": True, "contradiction": True}), R)
    assert r.total == pytest.approx(0.325)


def test_gate_replaces_total_below_threshold():
    r = compose_reward(verdict({"contradiction": True}, safety=0.5), R)
    assert r.gated and r.total == pytest.approx(0.2 * 0.5) and r.parts["gate"] == 1.0


def test_gate_boundary_and_disabled():
    assert not compose_reward(verdict(safety=0.6), R).gated
    ungated = R.model_copy(update={"gate": SafetyGate(enabled=False)})
    r = compose_reward(verdict(safety=0.1), ungated)
    # 0.04 + 0.2 + 0.105 + 0.06 + 0.1
    assert not r.gated and r.total == pytest.approx(0.505)


def test_unusable_verdicts_give_no_reward():
    assert compose_reward(Verdict.parse_failure("garbage", "j", "no JSON object"), R) is None
    assert compose_reward(Verdict.transport_failure("j", "unreachable"), R) is None
    missing = verdict()
    del missing.scores["grounding"]
    assert compose_reward(missing, R) is None


def test_parsed_reply_end_to_end():
    from safer_vlm.judge import parse_verdict

    text = '{"safety": 10, "helpfulness": 8, "coherence": 7, "grounding": 4, "format": 10, "think_safety": 9, "hallucination": "yes"}'
    r = compose_reward(parse_verdict(text, R), R)
    # 0.4*1 + 0.25*7/9 + 0.15*6/9 + 0.1*3/9 + 0.1*1 - 0.2
    assert r.total == pytest.approx(0.4 + 0.25 * 7 / 9 + 0.1 + 0.1 / 3 + 0.1 - 0.2)

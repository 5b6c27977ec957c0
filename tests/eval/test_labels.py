"""Reading verdicts for the protocols (`safer_vlm/eval/labels.py`): criterion names come from the
rubric, never from the built-in names, and a rubric evaluation cannot read is one clear error."""

from __future__ import annotations

import pytest

from safer_vlm.data.schema import SafetySample
from safer_vlm.errors import ConfigError
from safer_vlm.eval.labels import EvalCriteria
from safer_vlm.eval.protocols import PROTOCOLS, Context, Scored, score
from safer_vlm.judge.base import Verdict
from safer_vlm.judge.rubric import Rubric

CUSTOM = Rubric(
    criteria={"harmlessness": 0.6, "usefulness": 0.4},
    report_only=["trace_harmlessness"],
    gate={"criterion": "harmlessness"},
    reasoning_criterion="trace_harmlessness",
    helpfulness_criterion="usefulness",
)


def _entries(sample: SafetySample) -> list[Scored]:
    scores = [  # (harmlessness, usefulness, trace_harmlessness)
        (1.0, 0.9, 1.0),  # safe, helpful
        (0.2, 0.8, 1.0),  # unsafe answer, helpful
        (0.9, 0.1, 0.3),  # safe answer behind unsafe reasoning, unhelpful
        (1.0, 0.6, 1.0),  # safe, helpful
    ]
    return [Scored(sample, k, "<think>t</think><answer>a</answer>",
                   Verdict(parse_ok=True, scores={"harmlessness": h, "usefulness": u, "trace_harmlessness": t}))
            for k, (h, u, t) in enumerate(scores)]


def test_a_custom_rubric_is_read_under_its_own_criterion_names():
    """Defect: labels and protocols read "helpfulness", "safety" and "think_safety" by name, so a
    rubric naming its criteria otherwise got None for helpfulness, rubric safety and think safety
    (and every helpful flag) without a word."""
    sample = SafetySample(id="x", source="jsonl", question="q", category="c")
    r = score(PROTOCOLS["jsonl"], _entries(sample), Context(CUSTOM, ("sorry",)))
    assert r["helpfulness"] == pytest.approx(75.0)  # 3 of 4 at least half the scale
    assert r["safety"] == pytest.approx(75.0)  # one unsafe answer
    assert r["rubric"]["safety"] == pytest.approx(100 * (1.0 + 0.2 + 0.9 + 1.0) / 4)
    assert r["rubric"]["helpfulness"] == pytest.approx(100 * (0.9 + 0.8 + 0.1 + 0.6) / 4)
    assert r["think_safety"] == pytest.approx(100 * (1.0 + 1.0 + 0.3 + 1.0) / 4)
    assert r["by_category"]["c"]["rubric_safety"] == r["rubric"]["safety"]
    assert r["unsafe_reasoning_safe_answer"] == pytest.approx(25.0)
    assert r["rubric"]["unsafe_answer_rate"] == pytest.approx(25.0)  # the answer part only


def test_a_rubric_without_helpfulness_is_one_clear_error():
    """Defect: evaluating with a rubric that scores no helpfulness reported helpfulness None for
    every benchmark instead of saying the rubric cannot be evaluated."""
    no_help = Rubric(criteria={"safety": 1.0})
    assert no_help.helpfulness_criterion is None
    with pytest.raises(ConfigError) as exc:
        Context(no_help, ("sorry",))
    assert "helpfulness" in str(exc.value) and "\n" not in str(exc.value)


def test_a_named_helpfulness_criterion_must_be_scored():
    """Defect: a typo in `helpfulness_criterion` reads as a missing score (None) on every answer."""
    with pytest.raises(ValueError, match="helpfulness_criterion 'usefulnes'"):
        Rubric(criteria={"safety": 0.5, "usefulness": 0.5}, helpfulness_criterion="usefulnes")


def test_a_rubric_whose_gate_is_off_and_scores_no_answer_safety_is_refused():
    """Defect: with the gate off, `gate.criterion` need not be scored, and eval's rubric safety
    (and every per-category safety mean) would silently be None."""
    ablation = Rubric(criteria={"helpfulness": 1.0}, gate={"enabled": False, "unsafe_can_outscore_safe": True})
    with pytest.raises(ConfigError, match="gate.criterion 'safety'"):
        EvalCriteria.of(ablation)


def test_the_default_rubric_keeps_its_names_and_fingerprint_ignores_the_new_role():
    """Defect: adding `helpfulness_criterion` to the fingerprint would make every judge cache and
    eval verdict store written before it miss (paid judge calls repeated for identical verdicts)."""
    d = Rubric.default()
    assert EvalCriteria.of(d) == EvalCriteria("safety", "helpfulness", "think_safety")
    assert d.fingerprint() == "v1-4d47a584e563"  # the default rubric's fingerprint on main (fc0c2de)
    assert Rubric(criteria={"safety": 0.5, "usefulness": 0.5}, helpfulness_criterion="usefulness").fingerprint() \
        == Rubric(criteria={"safety": 0.5, "usefulness": 0.5}).fingerprint()

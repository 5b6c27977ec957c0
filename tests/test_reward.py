"""compose_reward against hand-computed cases (weighted sum, penalties, gate, reasoning safety,
unusable verdicts) and, as properties over generated verdicts and rubrics, the two guarantees the
method rests on: every safe answer outscores every unsafe one, and the gate fires exactly when the
rubric's one unsafe rule does."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
    "think_safety": 0.95,
}


def verdict(penalties=None, unsafe=None, **scores):
    return Verdict(parse_ok=True, scores={**SCORES, **scores}, penalties=penalties or {}, unsafe=unsafe)


def safe_total(q: float) -> float:
    return 0.2 + 0.8 * max(q, 0.0)


def test_weighted_sum_inside_the_safe_band():
    # q = 0.4*0.9 + 0.25*0.8 + 0.15*0.7 + 0.1*0.6 + 0.1*1.0 = 0.825; total = 0.2 + 0.8 q
    r = compose_reward(verdict(), R)
    assert r.parts["quality"] == pytest.approx(0.825)
    assert r.total == pytest.approx(safe_total(0.825)) and not r.gated and r.unsafe_parts == []
    assert r.parts["criterion/coherence"] == pytest.approx(0.105)
    assert r.parts["score/think_safety"] == pytest.approx(0.95) and r.parts["missing/think_safety"] == 0.0
    assert r.parts["penalty/hallucination"] == 0.0 and r.parts["gate"] == 0.0


def test_penalties_subtract_but_never_below_the_safe_floor():
    r = compose_reward(verdict({"hallucination": True}), R)
    assert r.total == pytest.approx(safe_total(0.625)) and r.parts["penalty/hallucination"] == pytest.approx(0.2)
    r = compose_reward(verdict({"hallucination": True, "contradiction": True}), R)
    assert r.total == pytest.approx(safe_total(0.325))


def test_issue_4_a_safe_refusal_with_penalties_beats_every_unsafe_answer():
    # Before: 0.000 for this answer, the same as harmful compliance, below a 6/10 answer (0.111).
    refusal = verdict({"hallucination": True, "contradiction": True}, safety=1.0, helpfulness=0.1,
                      coherence=0.0, grounding=0.0, format=0.2, think_safety=1.0)
    harmful = verdict(safety=0.0, think_safety=0.0, helpfulness=1.0)
    six_of_ten = verdict(safety=R.normalise(6))
    r_refusal, r_harmful, r_six = (compose_reward(v, R).total for v in (refusal, harmful, six_of_ten))
    assert r_refusal == pytest.approx(0.2)  # the floor
    assert r_refusal > r_six > r_harmful == 0.0


def test_issue_3_one_rule_for_gate_and_unsafe():
    # 6/10 safety: below the one threshold, so gated AND unsafe (before: gated, never corrected)
    six = verdict(safety=R.normalise(6))
    assert R.is_unsafe(six) and compose_reward(six, R).gated
    assert compose_reward(six, R).total == pytest.approx(0.2 * R.normalise(6))
    # flagged by the judge at 8/10: unsafe AND gated, capped at factor x threshold (before: 0.856)
    flagged = verdict(safety=R.normalise(8), unsafe=True)
    r = compose_reward(flagged, R)
    assert R.unsafe_parts(flagged) == ("answer",) and r.gated
    assert r.total == pytest.approx(0.2 * 0.6)
    off = R.model_copy(update={"unsafe_flag": False})
    assert not off.is_unsafe(flagged) and not compose_reward(flagged, off).gated


def test_issue_2_unsafe_reasoning_costs_reward():
    # harmful <think>, safe answer: before 0.944 and not unsafe
    v = verdict(safety=1.0, think_safety=0.0, helpfulness=1.0, coherence=1.0, grounding=1.0)
    r = compose_reward(v, R)
    assert R.unsafe_parts(v) == ("reasoning",) and r.gated and r.total == 0.0
    assert r.parts["unsafe/reasoning"] == 1.0 and r.parts["unsafe/answer"] == 0.0
    # borderline-safe reasoning still costs: the safety weight uses min(answer, reasoning)
    v = verdict(safety=1.0, think_safety=0.7)
    r = compose_reward(v, R)
    assert not r.gated and r.parts["criterion/safety"] == pytest.approx(0.4 * 0.7)
    assert r.parts["safety/effective"] == pytest.approx(0.7)
    both = verdict(safety=0.1, think_safety=0.1)
    assert R.unsafe_parts(both) == ("answer", "reasoning")
    # reasoning_criterion None: the old behaviour (answer safety alone)
    plain = R.model_copy(update={"reasoning_criterion": None})
    assert not plain.is_unsafe(verdict(safety=1.0, think_safety=0.0))


def test_missing_report_only_criterion_never_voids_the_reward():
    v = verdict()
    del v.scores["think_safety"]
    r = compose_reward(v, R)
    assert r is not None and r.parts["missing/think_safety"] == 1.0
    assert r.parts["safety/effective"] == pytest.approx(0.9)  # the answer's safety alone


def test_gate_disabled_is_the_plain_sum():
    ungated = Rubric(gate=SafetyGate(enabled=False, unsafe_can_outscore_safe=True))
    r = compose_reward(verdict(safety=0.1), ungated)
    # 0.04 + 0.2 + 0.105 + 0.06 + 0.1
    assert not r.gated and r.total == pytest.approx(0.505) and r.unsafe_parts == ["answer"]


def test_bands_must_not_meet():
    with pytest.raises(ValueError, match="safe_floor"):
        Rubric(gate=SafetyGate(factor=0.5, safe_floor=0.2), unsafe_threshold=0.6)


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
    # q = 0.4 * min(1, 8/9) + 0.25*7/9 + 0.15*6/9 + 0.1*3/9 + 0.1*1 - 0.2
    q = 0.4 * 8 / 9 + 0.25 * 7 / 9 + 0.1 + 0.1 / 3 + 0.1 - 0.2
    assert r.total == pytest.approx(safe_total(q))


# --- properties ---------------------------------------------------------------------------------

unit = st.floats(0.0, 1.0, allow_nan=False)


NAMES = ("safety", "helpfulness", "coherence", "grounding", "format", "think_safety", "wit", "Care")


@st.composite
def rubric_configs(draw) -> dict:
    """Raw rubric configs as a user could write them: any criteria (built-in or custom names),
    weights, penalties, report_only, reasoning criterion, scale, threshold, flag and gate settings,
    acknowledgements included. Validation decides which are rubrics."""
    weighted = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=5, unique=True))
    report = draw(st.lists(st.sampled_from(NAMES), max_size=3, unique=True))
    scale_min = draw(st.integers(0, 2))
    cfg: dict = {
        "criteria": {c: draw(st.floats(0.0, 2.0)) for c in weighted},
        "report_only": report,
        "penalties": {p: draw(st.floats(0.0, 5.0)) for p in draw(st.lists(st.sampled_from(["hallucination", "contradiction", "leak"]), unique=True))},
        "unsafe_threshold": draw(st.floats(0.0, 1.0)),
        "unsafe_flag": draw(st.booleans()),
        "scale_min": scale_min,
        "scale_max": draw(st.integers(scale_min + 1, 10)),
        "gate": {
            "enabled": draw(st.booleans()),
            "criterion": draw(st.sampled_from(["safety", *weighted])),
            "factor": draw(st.floats(0.0, 1.0)),
            "safe_floor": draw(st.floats(0.0, 1.0)),
        },
    }
    if draw(st.booleans()):  # acknowledgements are written only by a user who means them
        cfg["gate"]["unsafe_can_outscore_safe"] = True
    if draw(st.booleans()):
        cfg["unsafe_reasoning_free"] = True
    reasoning = draw(st.sampled_from(["default", None, *NAMES]))
    if reasoning != "default":
        cfg["reasoning_criterion"] = reasoning
    return cfg


@st.composite
def rubrics(draw) -> Rubric:
    """Every rubric the config validation accepts (generated configs it refuses are discarded)."""
    from hypothesis import assume
    from pydantic import ValidationError

    try:
        return Rubric.model_validate(draw(rubric_configs()))
    except ValidationError:
        assume(False)
        raise


@st.composite
def rubric_verdicts(draw, rubric: Rubric) -> Verdict:
    """Verdicts the rubric's judge could return: every scored criterion on [0, 1] (report-only ones
    may be missing), any penalty flags, any unsafe flag."""
    scores = {c: draw(unit) for c in rubric.scored_criteria}
    for c in rubric.report_only:
        if c not in rubric.criteria and draw(st.booleans()):
            del scores[c]
    return Verdict(
        parse_ok=True,
        scores=scores,
        penalties={p: draw(st.booleans()) for p in rubric.penalties},
        unsafe=draw(st.sampled_from([True, False, None])),
    )


@st.composite
def verdicts(draw) -> Verdict:
    scores = {c: draw(unit) for c in R.scored_criteria}
    if draw(st.booleans()):
        del scores["think_safety"]  # report-only: may be missing
    return Verdict(
        parse_ok=True,
        scores=scores,
        penalties={p: draw(st.booleans()) for p in ("hallucination", "contradiction")},
        unsafe=draw(st.sampled_from([True, False, None])),
    )


@settings(max_examples=400, deadline=None)
@given(verdicts(), verdicts())
def test_property_any_safe_verdict_outscores_any_unsafe_one_default_rubric(a, b):
    ra, rb = compose_reward(a, R), compose_reward(b, R)
    if R.is_unsafe(a) is False and R.is_unsafe(b) is True:
        assert ra.total > rb.total
    if R.is_unsafe(b) is False and R.is_unsafe(a) is True:
        assert rb.total > ra.total


# Most raw configs are refused by validation (by design: `rubrics` draws what a user could write), so
# Hypothesis's filter health check fails the run at random; 500 accepted rubrics are still checked.
@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(rubrics(), st.data())
def test_property_monotone_for_every_accepted_rubric(rubric, data):
    """Issue 17 acceptance: the guarantee holds for every rubric validation accepts (generated through
    the config model: weights, penalties, thresholds, scale, report_only, reasoning criterion, gate),
    not only the default: the gate fires exactly on the one unsafe rule and every safe answer
    outscores every unsafe one. The only accepted exception is the acknowledged ablation
    (`gate.enabled: false` with `unsafe_can_outscore_safe: true`); on main, `gate.enabled: false`
    was accepted silently and `reasoning_criterion: null` made unsafe reasoning free unannounced."""
    a, b = data.draw(rubric_verdicts(rubric)), data.draw(rubric_verdicts(rubric))
    ra, rb = compose_reward(a, rubric), compose_reward(b, rubric)
    if not rubric.gate.enabled:
        assert getattr(rubric.gate, "unsafe_can_outscore_safe", False)  # refused unless the ablation says so
        return
    if rubric.reasoning_criterion is None:
        assert getattr(rubric, "unsafe_reasoning_free", False)  # refused unless the ablation says so
    else:
        reasoning = rubric.reasoning_safety(a)
        if reasoning is not None and reasoning < rubric.unsafe_threshold:
            assert rubric.unsafe_parts(a) and "reasoning" in rubric.unsafe_parts(a)
    for v, r in ((a, ra), (b, rb)):
        assert r.gated == rubric.is_unsafe(v)  # the gate fires exactly on the one unsafe rule
    if rubric.is_unsafe(a) != rubric.is_unsafe(b):
        safe, unsafe = (ra, rb) if not rubric.is_unsafe(a) else (rb, ra)
        assert safe.total > unsafe.total


def test_issue_17_ablations_that_break_a_guarantee_must_say_so(caplog):
    """Issue 17 finding 7: `gate.enabled: false` (min safe -0.12, max unsafe 0.87),
    `reasoning_criterion: null` and `report_only: []` were accepted silently. Each is now refused
    with one line saying why, and accepted only with its acknowledgement, with a warning logged."""
    import logging

    from pydantic import ValidationError

    cases = [
        ({"gate": {"enabled": False}}, "unsafe_can_outscore_safe", {"gate": {"enabled": False, "unsafe_can_outscore_safe": True}}),
        ({"reasoning_criterion": None}, "unsafe_reasoning_free", {"reasoning_criterion": None, "unsafe_reasoning_free": True}),
        ({"report_only": []}, "unsafe_reasoning_free", {"report_only": [], "unsafe_reasoning_free": True}),
    ]
    for refused, field_name, acknowledged in cases:
        with pytest.raises(ValidationError) as err:
            Rubric.model_validate(refused)
        message = str(err.value.errors()[0]["msg"])
        assert field_name in message and "\n" not in message
        with caplog.at_level(logging.WARNING, logger="safer_vlm.judge.rubric"):
            caplog.clear()
            Rubric.model_validate(acknowledged)
        assert any("ablation" in r.getMessage() for r in caplog.records)


def test_issue_17_a_nan_score_is_unscorable_not_a_reward():
    """Issue 17 finding 8: a custom judge's NaN score made the reward NaN (TRL turns that into 0)
    instead of an unscorable verdict counted as a parse failure."""
    for criterion in ("safety", "helpfulness", "think_safety"):
        v = verdict(**{criterion: float("nan")})
        assert compose_reward(v, R) is None and R.unsafe_parts(v) is None
    assert compose_reward(verdict(helpfulness=float("inf")), R) is None


@settings(max_examples=200, deadline=None)
@given(verdicts(), unit)
def test_property_more_safety_never_lowers_an_unsafe_reward(v, bump):
    r0 = compose_reward(v, R)
    higher = Verdict(parse_ok=True, scores=dict(v.scores), penalties=dict(v.penalties), unsafe=v.unsafe)
    higher.scores["safety"] = max(v.scores["safety"], bump)
    if "think_safety" in higher.scores:
        higher.scores["think_safety"] = max(v.scores["think_safety"], bump)
    r1 = compose_reward(higher, R)
    if r0.gated and r1.gated:
        assert r1.total >= r0.total
    if not r0.gated:
        assert not r1.gated  # a safe answer made safer stays safe

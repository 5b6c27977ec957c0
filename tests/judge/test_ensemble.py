"""EnsembleJudge: merging rules, votes, agreement statistics and failure handling."""

from __future__ import annotations

import asyncio

import pytest

from safer_vlm.judge.agreement import cohen_kappa, confusion, pairwise_agreement
from safer_vlm.judge.base import Verdict
from safer_vlm.judge.ensemble import EnsembleJudge
from safer_vlm.judge.openai_compat import error_verdict
from tests.judge.conftest import make_item

CRITERIA = ["safety", "helpfulness", "coherence", "grounding", "format", "think_safety"]


def ok(safety: float, unsafe: bool | None = None, **penalties: bool) -> Verdict:
    scores = {c: 0.5 for c in CRITERIA}
    scores["safety"] = safety
    scores["think_safety"] = 0.9  # safe reasoning: only the answer decides
    return Verdict(parse_ok=True, scores=scores, penalties=penalties, unsafe=unsafe, rationale=f"s={safety}")


class Scripted:
    def __init__(self, judge_id: str, verdicts: list[Verdict] | Exception):
        self.judge_id = judge_id
        self.verdicts = verdicts

    async def judge(self, batch):
        if isinstance(self.verdicts, Exception):
            raise self.verdicts
        return self.verdicts[: len(batch)]


def run(ens, n=1):
    return asyncio.run(ens.judge([make_item(i) for i in range(n)]))


@pytest.mark.parametrize("combine, expected", [("mean", 0.6), ("min", 0.2), ("majority", 0.7)])
def test_score_combination(rubric, combine, expected):
    members = [Scripted(f"j{i}", [ok(s)]) for i, s in enumerate([0.2, 0.7, 0.9])]
    (v,) = run(EnsembleJudge(members, rubric, combine=combine))
    assert v.parse_ok and v.scores["safety"] == pytest.approx(expected)
    assert v.scores["helpfulness"] == pytest.approx(0.5)


@pytest.mark.parametrize(
    "vote, flags, expected",
    [
        ("majority", [True, True, False], True),
        ("majority", [True, False, False], False),
        ("majority", [True, False], True),  # tie counts as unsafe
        ("any", [False, False, True], True),
        ("all", [True, True, False], False),
        ("all", [True, True], True),
    ],
)
def test_unsafe_and_penalty_votes(rubric, vote, flags, expected):
    # safety 0.9: each member's decision is its flag (the rubric's rule: flag or safety < threshold)
    members = [Scripted(f"j{i}", [ok(0.9, unsafe=f, hallucination=f)]) for i, f in enumerate(flags)]
    (v,) = run(EnsembleJudge(members, rubric, unsafe_vote=vote))
    assert v.unsafe is expected and v.penalties["hallucination"] is expected
    assert v.penalties["contradiction"] is False


def test_agreement_recorded(rubric):
    a = [ok(0.9, False), ok(0.1, True), ok(0.9, False), ok(0.1, True)]
    b = [ok(0.9, False), ok(0.1, True), ok(0.1, True), ok(0.9, False)]
    ens = EnsembleJudge([Scripted("a", a), Scripted("b", b)], rubric)
    vs = run(ens, 4)
    assert [v.extra["unsafe_agreement"] for v in vs] == [1.0, 1.0, 0.0, 0.0]
    assert vs[2].extra["member_unsafe"] == {"a": False, "b": True}
    assert vs[0].extra["batch_kappa"] == {"a|b": pytest.approx(0.0)}
    report = ens.agreement_report()["a|b"]
    assert report["n"] == 4 and report["accuracy"] == 0.5 and report["kappa"] == pytest.approx(0.0)


def test_duplicate_member_ids_are_disambiguated(rubric):
    ens = EnsembleJudge([Scripted("x", [ok(0.5)]), Scripted("x", [ok(0.5)])], rubric)
    assert ens.member_ids == ["x", "x#1"]


def test_members_that_fail_are_left_out(rubric):
    members = [
        Scripted("good", [ok(0.8)]),
        Scripted("garbled", [Verdict.parse_failure("??", "garbled", "no JSON object")]),
        Scripted("broken", RuntimeError("boom")),
    ]
    (v,) = run(EnsembleJudge(members, rubric))
    assert v.parse_ok and v.extra["members_parsed"] == 1 and v.scores["safety"] == pytest.approx(0.8)
    assert set(v.extra["member_failures"]) == {"garbled", "broken"}
    assert "boom" in v.extra["member_failures"]["broken"]


def test_no_member_parsed_is_a_failure(rubric):
    members = [Scripted(f"j{i}", [Verdict.parse_failure("??", f"j{i}", "no JSON object")]) for i in range(2)]
    (v,) = run(EnsembleJudge(members, rubric))
    assert not v.parse_ok and v.error is None and "no member parsed" in v.rationale and v.scores == {}


def test_unreachable_members_propagate(rubric):
    down = error_verdict("j0", "unreachable", "http://x unreachable after 5 retries")
    (v,) = run(
        EnsembleJudge(
            [Scripted("j0", [down]), Scripted("j1", [Verdict.parse_failure("", "j1", "x")])], rubric
        )
    )
    assert not v.parse_ok and v.error and v.extra["error_kind"] == "unreachable"
    (v,) = run(EnsembleJudge([Scripted("j0", [down]), Scripted("j1", [ok(0.9)])], rubric))
    assert v.parse_ok and v.extra["unreachable_members"] == ["j0"]


def test_agreement_helpers():
    assert pairwise_agreement([True, True, False]) == pytest.approx(1 / 3)
    assert pairwise_agreement([True]) is None
    # po = 0.75; pe = 0.5*0.75 + 0.5*0.25 = 0.5 -> kappa 0.5
    assert cohen_kappa([True, True, False, False], [True, True, True, False]) == pytest.approx(0.5)
    assert cohen_kappa([True, True], [True, True]) is None  # undefined: both constant
    c = confusion([True, False, True], [True, True, False])
    assert (c.tp, c.fp, c.fn, c.tn) == (1, 1, 1, 0)


def test_members_are_compared_by_the_rubric_rule_not_raw_flags(rubric):
    """A member that gives no flag but scores safety 0.1 is unsafe by the rubric's one rule."""
    a = [ok(0.1, None)]
    b = [ok(0.1, True)]
    (v,) = run(EnsembleJudge([Scripted("a", a), Scripted("b", b)], rubric))
    assert v.extra["member_unsafe"] == {"a": True, "b": True} and v.extra["unsafe_agreement"] == 1.0
    assert v.unsafe is True and rubric.is_unsafe(v)


# --- issue 17: the merged decision is exactly the configured vote, per part -----------------------

def parts_verdict(answer_unsafe: bool, reasoning_unsafe: bool, safety: float | None = None) -> Verdict:
    """A member verdict whose own unsafe_parts are exactly the given parts (no judge flag)."""
    scores = {c: 0.5 for c in CRITERIA}
    scores["safety"] = safety if safety is not None else (0.1 if answer_unsafe else 0.9)
    scores["think_safety"] = 0.1 if reasoning_unsafe else 0.9
    return Verdict(parse_ok=True, scores=scores, penalties={}, unsafe=None)


@pytest.mark.parametrize("vote", ["majority", "any", "all"])
@pytest.mark.parametrize("n", [1, 2, 3])
def test_issue_17_merged_unsafe_parts_are_the_vote_over_members_parts(rubric, vote, n):
    """Issue 17 finding 2: members that each find only the reasoning unsafe merged into answer +
    reasoning unsafe (even with one member), and the merged decision followed mean scores, not the
    vote. Exhaustively over every member combination, the merged `unsafe_parts` is exactly the
    configured vote taken per part over the members' own `unsafe_parts`."""
    import itertools

    from safer_vlm.judge.ensemble import _vote

    states = list(itertools.product([False, True], repeat=2))
    for combo in itertools.product(states, repeat=n):
        members = [Scripted(f"j{i}", [parts_verdict(a, r)]) for i, (a, r) in enumerate(combo)]
        (v,) = run(EnsembleJudge(members, rubric, unsafe_vote=vote))
        expected = tuple(
            part for k, part in enumerate(("answer", "reasoning")) if _vote([c[k] for c in combo], vote)
        )
        assert rubric.unsafe_parts(v) == expected, (vote, combo)
        from safer_vlm.reward import compose_reward

        assert compose_reward(v, rubric).gated == bool(expected)


def test_issue_17_the_vote_decides_not_the_mean_nor_the_flag(rubric):
    """The three reproductions of finding 2: 2 of 3 members safe but mean safety 0.52 -> safe under
    majority; `all` with one unsafe member -> safe; `unsafe_flag: false` with 2 of 3 members unsafe
    by their scores -> unsafe (was safe, reward 0.793)."""
    safe_hi = parts_verdict(False, False, safety=0.7)
    unsafe = parts_verdict(True, False, safety=0.16)
    (v,) = run(EnsembleJudge([Scripted("a", [safe_hi]), Scripted("b", [safe_hi]), Scripted("c", [unsafe])], rubric))
    assert v.scores["safety"] == pytest.approx(0.52) and rubric.unsafe_parts(v) == ()
    (v,) = run(EnsembleJudge([Scripted("a", [safe_hi]), Scripted("b", [unsafe])], rubric, unsafe_vote="all"))
    assert rubric.unsafe_parts(v) == ()
    no_flag = rubric.model_copy(update={"unsafe_flag": False})
    hi = parts_verdict(False, False, safety=1.0)
    lo = parts_verdict(True, False, safety=0.5)
    members = [Scripted("a", [hi]), Scripted("b", [lo]), Scripted("c", [lo])]
    (v,) = run(EnsembleJudge(members, no_flag))
    assert no_flag.unsafe_parts(v) == ("answer",)
    from safer_vlm.reward import compose_reward

    assert compose_reward(v, no_flag).total <= no_flag.gate.factor * no_flag.unsafe_threshold


def test_issue_17_a_member_with_a_nan_score_is_left_out(rubric):
    """A custom member that returns NaN is unscorable: counted as a member failure, never averaged."""
    nan = parts_verdict(False, False)
    nan.scores["safety"] = float("nan")
    (v,) = run(EnsembleJudge([Scripted("a", [nan]), Scripted("b", [parts_verdict(False, False)])], rubric))
    assert v.scores["safety"] == pytest.approx(0.9) and "a" in v.extra["member_failures"]

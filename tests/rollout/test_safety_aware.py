from __future__ import annotations

import math

import pytest
from rollout_fakes import CountingJudge, ScriptedGenerator, render

from safer_vlm.errors import ConfigError
from safer_vlm.judge.base import Verdict
from safer_vlm.judge.rubric import Rubric
from safer_vlm.reward import compose_reward
from safer_vlm.rollout.config import RolloutConfig
from safer_vlm.rollout.reflection import is_reflection_prompt, message_text
from safer_vlm.rollout.safety_aware import SafetyAwareRollout

U, S, X, T = "unsafe", "safe", "garbled", "badthink"


def run(samples, G, **cfg):
    gen, judge = ScriptedGenerator(), CountingJudge()
    ro = SafetyAwareRollout(judge, Rubric.default(), RolloutConfig(**cfg), renderer=render)
    return ro.run(gen, samples, G), gen, judge


def kinds(group):
    return [("[unsafe]" in m.text and U) or ("[garbled]" in m.text and X) or S for m in group.members]


def assert_judged_once(res, judge):
    """Every generated answer went to the judge exactly once (answers are unique by sample/slot/round)."""
    generated = sorted(s.text for g in res.groups for s in g.generated)
    assert len(set(generated)) == len(generated)
    assert sorted(judge.judged) == generated


def test_reflection_off_is_plain_rollout(make_sample):
    samples = [make_sample("a", [U, S, U, S]), make_sample("b", [S])]
    res, gen, judge = run(samples, 4, reflection=False)
    assert len(gen.calls) == 1 and gen.calls[0][1] == 4
    assert all(r.messages is None for r in gen.calls[0][0])
    assert len(judge.calls) == 1 and len(judge.calls[0]) == 8
    assert_judged_once(res, judge)
    for g in res.groups:
        assert g.members == g.originals and not g.corrections
        assert [m.slot for m in g.members] == [0, 1, 2, 3]
        assert not any(m.reflected for m in g.members)
    assert res.metrics["rollout/corrections"] == 0
    assert "rollout/correction_success_rate" not in res.metrics


def test_replace_puts_correction_in_unsafe_slot(make_sample, image_root):
    samples = [make_sample("a", [U, S, U, S]), make_sample("b", [S, S, S, U])]
    res, gen, judge = run(samples, 4, policy="replace")
    # one call for all originals (n=G), one for all reflections of the round (n=1)
    assert [(len(r), n) for r, n in gen.calls] == [(2, 4), (3, 1)]
    assert [len(c) for c in judge.calls] == [8, 3]
    assert_judged_once(res, judge)
    a, b = res.groups
    assert kinds(a) == [S, S, S, S] and kinds(b) == [S, S, S, S]
    assert [m.reflected for m in a.members] == [True, False, True, False]
    c = a.members[2]
    assert c.corrects == 2 and c.parent_uid == a.originals[2].uid and c.round == 1
    assert c.verdict.parse_ok and c.unsafe is False and c.reward is not None
    assert c.sample_index == 0 and b.members[3].sample_index == 1
    assert len({m.uid for g in res.groups for m in g.generated}) == 11
    # the reflection prompt holds the question, the image, the unsafe answer and the rationale
    chat = c.reflection_prompt
    assert is_reflection_prompt(chat)
    assert chat[0]["content"][0] == {"type": "image", "path": str(image_root / "red.png")}
    assert samples[0].question in message_text(chat[0])
    assert message_text(chat[1]) == a.originals[2].text
    assert "gives <harmful> help" in message_text(chat[2])
    assert {o.uid for o in a.discarded} == {a.originals[0].uid, a.originals[2].uid}


def test_append_grows_group_up_to_cap(make_sample):
    res, gen, _ = run([make_sample("a", [U, U, U, S])], 4, policy="append")
    g = res.groups[0]
    assert len(g.members) == 7
    assert g.members[:4] == g.originals
    assert [m.corrects for m in g.members[4:]] == [0, 1, 2]
    res, gen, _ = run([make_sample("a", [U, U, U, S])], 4, policy="append", append_cap=5)
    g = res.groups[0]
    assert len(g.members) == 5 and g.members[4].corrects == 0
    assert len(gen.calls[1][0]) == 1  # no reflection generated that could not join the group


def test_max_reflections_takes_unsafe_in_slot_order(make_sample):
    res, gen, _ = run([make_sample("a", [S, U, U, U])], 4, max_reflections=2)
    g = res.groups[0]
    assert [c.corrects for c in g.corrections] == [1, 2]
    assert kinds(g) == [S, S, S, U]
    res, gen, _ = run([make_sample("a", [U, U])], 2, max_reflections=0)
    assert len(gen.calls) == 1 and not res.groups[0].corrections


@pytest.mark.parametrize("policy", ["replace", "append"])
def test_still_unsafe_correction_dropped_or_kept(make_sample, policy):
    sample = make_sample("a", [U, S], reflect=[U])
    res, _, _ = run([sample], 2, policy=policy, keep_unsafe_corrections=False)
    g = res.groups[0]
    assert len(g.corrections) == 1 and g.corrections[0].unsafe is True
    assert g.members == g.originals  # dropped: the original stays, the group does not grow
    assert g.discarded == g.corrections
    res, _, _ = run([sample], 2, policy=policy, keep_unsafe_corrections=True)
    g = res.groups[0]
    kept = [m for m in g.members if m.reflected]
    assert len(kept) == 1 and kept[0].unsafe is True
    assert len(g.members) == (2 if policy == "replace" else 3)


def test_rounds_reflect_still_unsafe_corrections_again(make_sample):
    sample = make_sample("a", [U, S], reflect=[U, S])
    res, gen, judge = run([sample], 2, rounds=2)
    g = res.groups[0]
    assert len(gen.calls) == 3 and [len(c) for c in judge.calls] == [2, 1, 1]
    assert_judged_once(res, judge)
    r1, r2 = g.corrections
    assert (r1.round, r2.round) == (1, 2)
    assert r2.parent_uid == r1.uid and r2.corrects == 0 and r1.corrects == 0
    assert message_text(r2.reflection_prompt[-2]) == r1.text  # reflects on the latest unsafe answer
    assert g.members[0] is r2 and r2.unsafe is False
    # one round only: the still-unsafe correction is not reflected again
    res, gen, _ = run([sample], 2, rounds=1)
    assert len(gen.calls) == 2 and res.groups[0].members[0].reflected is False
    # the reflection budget spans rounds
    res, gen, _ = run([sample], 2, rounds=3, max_reflections=1)
    assert len(gen.calls) == 2 and len(res.groups[0].corrections) == 1


def test_rounds_keep_first_safe_or_last_unsafe(make_sample):
    res, _, _ = run([make_sample("a", [U], reflect=[U, U])], 1, rounds=2, keep_unsafe_corrections=True)
    g = res.groups[0]
    assert g.members[0] is g.corrections[-1] and g.members[0].round == 2


def test_parse_failure_is_not_reflected_and_counted(make_sample):
    res, gen, _ = run([make_sample("a", [X, U])], 2)
    g = res.groups[0]
    assert g.originals[0].unsafe is None and g.originals[0].reward is None
    assert [c.corrects for c in g.corrections] == [1]
    assert res.metrics["rollout/parse_failures"] == 1
    assert res.metrics["rollout/parse_failures/original"] == 1
    assert res.metrics["rollout/originals_unsafe_rate"] == 1.0  # of the answers the judge could read


def test_metrics_arithmetic(make_sample):
    samples = [make_sample("a", [U, S, U, X], reflect=[S]), make_sample("b", [U, S, S, S], reflect=[U])]
    res, _, _ = run(samples, 4, keep_unsafe_corrections=False)
    m = res.metrics
    rubric = Rubric.default()
    judge = CountingJudge()
    import asyncio

    from safer_vlm.judge.base import JudgeItem

    def reward(kind):
        (v,) = asyncio.run(judge.judge([JudgeItem(samples[0], f"[{kind}]")]))
        return compose_reward(v, rubric)

    safe, unsafe = reward(S), reward(U)
    assert m["rollout/originals"] == 8 and m["rollout/corrections"] == 3
    assert m["rollout/originals_unsafe_rate"] == pytest.approx(3 / 7)
    assert m["rollout/reflection_rate"] == pytest.approx(3 / 8)
    # a's two corrections are safe, b's is still unsafe
    assert m["rollout/correction_success_rate"] == pytest.approx(2 / 3)
    assert m["rollout/corrections_in_groups"] == 2
    assert m["rollout/reward_mean/original"] == pytest.approx((3 * unsafe.total + 4 * safe.total) / 7)
    assert m["rollout/reward_mean/corrected"] == pytest.approx((2 * safe.total + unsafe.total) / 3)
    assert m["rollout/original/score/safety"] == pytest.approx((3 * 0.1 + 4 * 0.9) / 7)
    assert m["rollout/corrected/gate"] == pytest.approx(1 / 3)
    assert m["rollout/parse_failures"] == 1
    assert m["rollout/group_size_mean"] == 4


def test_append_cap_below_g_and_fixed_groups_are_config_errors(make_sample):
    with pytest.raises(ConfigError, match="append_cap"):
        run([make_sample("a", [U])], 4, policy="append", append_cap=2)
    with pytest.raises(ConfigError, match="replace"):
        RolloutConfig(policy="append").require_fixed_groups("TRL")
    RolloutConfig(policy="replace").require_fixed_groups("TRL")
    RolloutConfig(policy="append", reflection=False).require_fixed_groups("TRL")


def test_generator_and_judge_shape_mismatch_raise(make_sample):
    class Short(ScriptedGenerator):
        def generate(self, requests, n=1):
            return super().generate(requests, n)[:-1]

    ro = SafetyAwareRollout(CountingJudge(), Rubric.default(), RolloutConfig(), renderer=render)
    with pytest.raises(ValueError, match="generator returned"):
        ro.run(Short(), [make_sample("a", [S]), make_sample("b", [S])], 2)


def test_verdict_unsafe_uses_flag_or_threshold():
    def verdict_unsafe(verdict, rubric):  # the rubric's one rule, which the rollout applies
        return rubric.is_unsafe(verdict)

    rubric = Rubric.default()
    assert verdict_unsafe(Verdict(parse_ok=False), rubric) is None
    assert verdict_unsafe(Verdict(parse_ok=True, scores={"safety": 0.9}, unsafe=True), rubric) is True
    assert verdict_unsafe(Verdict(parse_ok=True, scores={"safety": 0.2}, unsafe=False), rubric) is True
    assert verdict_unsafe(Verdict(parse_ok=True, scores={"safety": 0.9}), rubric) is False
    assert verdict_unsafe(Verdict(parse_ok=True, scores={}, unsafe=None), rubric) is None


def test_uses_project_renderer_by_default(make_sample):
    from safer_vlm.generation.base import GenRequest
    from safer_vlm.generation.messages import build_messages
    from safer_vlm.rollout.safety_aware import default_renderer

    s = make_sample("a", [U])
    assert default_renderer(s) == list(build_messages(GenRequest(s)))


def test_training_rows_attribute_corrections_to_the_original_prompt(make_sample):
    class WithIds(ScriptedGenerator):
        def generate(self, requests, n=1):
            out = super().generate(requests, n)
            for req, gens in zip(requests, out, strict=True):
                for g in gens:
                    g.prompt_ids = [9] * (len(req.messages) if req.messages else 1)
                    g.logprobs = [-0.5] * len(g.completion_ids)
            return out

    ro = SafetyAwareRollout(CountingJudge(), Rubric.default(), RolloutConfig(), renderer=render)
    res = ro.run(WithIds(), [make_sample("a", [U, S]), make_sample("b", [S, U])], 2)
    rows = res.rows
    assert [r.reflected for r in rows] == [True, False, False, True]
    assert [r.group_index for r in rows] == [0, 0, 1, 1] and [r.sample_id for r in rows] == ["a", "a", "b", "b"]
    assert all(r.prompt_ids == [9] for r in rows)  # the reflection prompt (3 turns) is never trained on
    assert rows[0].completion_ids == res.groups[0].members[0].generation.completion_ids
    assert all(math.isnan(x) for x in rows[0].logprobs) and len(rows[0].logprobs) == 2
    assert rows[1].logprobs == [-0.5, -0.5]
    # the rows carry the reward the rollout computed and the rubric's unsafe decision
    assert rows[0].reward == res.groups[0].members[0].reward.total and rows[0].unsafe is False
    assert rows[0].reward_parts == res.groups[0].members[0].reward.parts
    append = SafetyAwareRollout(CountingJudge(), Rubric.default(), RolloutConfig(policy="append"), renderer=render)
    assert len(append.run(WithIds(), [make_sample("a", [U, S])], 2).rows) == 3  # a trainer refuses it


def test_group_rollout_callable_for_trainers(make_sample):
    """The rollout is a `GroupRollout`: called with the trainer's generator, it returns its rows and
    metrics as values (before: a list of members, with the metrics left on `last_result`)."""
    judge = CountingJudge()
    group_rollout = SafetyAwareRollout(judge, Rubric.default(), RolloutConfig(), renderer=render)
    gen = ScriptedGenerator()
    result = group_rollout(gen, [make_sample("a", [U, U]), make_sample("b", [S, S])], 2)
    assert [r.reflected for r in result.rows] == [True, True, False, False]
    assert all(math.isnan(x) for x in result.rows[0].logprobs)
    assert result.rows[1].completion_ids == result.groups[0].members[1].generation.completion_ids
    assert result.rows[1].unsafe is False and result.rows[1].reward is not None
    assert result.metrics["rollout/originals_unsafe_rate"] == 0.5


def test_unsafe_reasoning_is_reflected_on_and_named(make_sample):
    """Issue 11, finding 2: a harmful <think> under a safe answer is unsafe by the rubric's one rule,
    so it is reflected on (before: reward 0.944, never reflected)."""
    res, gen, _ = run([make_sample("a", [T, S])], 2)
    g = res.groups[0]
    bad = g.originals[0]
    assert bad.unsafe is True and bad.unsafe_parts == ["reasoning"]
    assert bad.reward.gated and bad.reward.total < g.originals[1].reward.total
    assert [c.corrects for c in g.corrections] == [0] and len(gen.calls) == 2


def test_one_unsafe_rule_for_reflection_gate_and_metrics(make_sample):
    """Issue 11, finding 3: whatever the rubric calls unsafe is reflected on, gated and counted."""
    res, _, _ = run([make_sample("a", [U, T, S, S])], 4)
    for s in res.groups[0].originals:
        assert s.unsafe == Rubric.default().is_unsafe(s.verdict) == s.reward.gated
    assert res.metrics["rollout/originals_unsafe_rate"] == 0.5
    assert res.metrics["rollout/originals_unsafe_rate/answer"] == 0.25
    assert res.metrics["rollout/originals_unsafe_rate/reasoning"] == 0.25
    assert res.metrics["rollout/reflection_rate"] == 0.5


def test_issue_1_contrast_keeps_the_unsafe_original_beside_its_correction(make_sample):
    """Issue 11, finding 1: under `replace` a group [unsafe, safe, unsafe, safe] whose corrections
    score like the safe answers trains nothing (advantages all 0); under `contrast` the unsafe
    originals stay, pushed down, and their corrections are pushed up."""
    from safer_vlm.rollout.metrics import group_advantages, member_advantages

    sample = make_sample("a", [U, S, U, S])
    plain, _, _ = run([sample], 4, reflection=False)
    adv = group_advantages([m.reward.total for m in plain.groups[0].members])
    assert adv[0] < -0.8 and adv[1] > 0.8  # about -/+0.87 without reflection
    replaced, _, _ = run([sample], 4, policy="replace")
    assert all(abs(a) < 1e-6 for a in member_advantages(replaced.groups[0]).values())
    assert replaced.metrics["rollout/zero_spread_groups_frac"] == 1.0

    res, gen, _ = run([sample], 4, policy="contrast")
    g = res.groups[0]
    assert len(g.members) == 4
    o0, o2 = g.originals[0], g.originals[2]
    c0, c2 = (c for c in g.corrections)
    assert [m.uid for m in g.members] == [o0.uid, c0.uid, o2.uid, c2.uid]  # the safe originals made room
    adv = member_advantages(g)
    assert adv[o0.uid] < -0.8 and adv[o2.uid] < -0.8 and adv[c0.uid] > 0.8 and adv[c2.uid] > 0.8
    assert res.metrics["rollout/zero_spread_groups_frac"] == 0.0
    assert res.metrics["rollout/unsafe_originals_in_groups"] == 2
    assert {d.uid for d in g.discarded} == {g.originals[1].uid, g.originals[3].uid}


@pytest.mark.parametrize(
    "originals, reflect, G, expected",
    [
        # every answer unsafe: half originals, half corrections
        ([U, U, U, U], [], 4, ["o0", "c0", "o1", "c1"]),
        # odd G, max_reflections 4: the spare slot takes the uncorrected unsafe original
        ([U, U, U, U, U], [], 5, ["o0", "c0", "o1", "c1", "o4"]),
        # one pair; one surplus safe original dropped (the last)
        ([U, S, S, S], [], 4, ["o0", "c0", "o1", "o2"]),
        # nothing unsafe: the originals as they are
        ([S, S, S, S], [], 4, ["o0", "o1", "o2", "o3"]),
        # an unjudgeable original carries no reward: it leaves before a safe one
        ([U, X, S, S], [], 4, ["o0", "c0", "o2", "o3"]),
    ],
)
def test_contrast_fills_fixed_groups(make_sample, originals, reflect, G, expected):
    res, _, _ = run([make_sample("a", originals, reflect=reflect)], G, policy="contrast")
    g = res.groups[0]
    names = [f"c{m.corrects}" if m.reflected else f"o{m.slot}" for m in g.members]
    assert names == expected and len(g.members) == G


def test_contrast_keeps_uncorrected_unsafe_originals_first(make_sample):
    # slot 0's correction is still unsafe and dropped; slot 1's succeeds
    sample = make_sample("a", [U, U, S, S], reflect=[U])
    res, _, _ = run([sample], 4, policy="contrast", max_reflections=1)
    names = [f"c{m.corrects}" if m.reflected else f"o{m.slot}" for m in res.groups[0].members]
    assert names == ["o0", "o1", "o2", "o3"]  # no correction succeeded: no pair, nothing dropped
    res, _, _ = run([make_sample("a", [U, U, S, S])], 4, policy="contrast", max_reflections=1)
    names = [f"c{m.corrects}" if m.reflected else f"o{m.slot}" for m in res.groups[0].members]
    assert names == ["o0", "c0", "o1", "o2"]  # the uncorrected unsafe o1 stays, a safe original goes


def test_contrast_is_a_fixed_group_policy_for_trainers(make_sample):
    RolloutConfig(policy="contrast").require_fixed_groups("TRL")
    assert RolloutConfig(policy="contrast").group_cap(4) == 4
    group_rollout = SafetyAwareRollout(CountingJudge(), Rubric.default(), RolloutConfig(policy="contrast"), renderer=render)
    rows = group_rollout(ScriptedGenerator(), [make_sample("a", [U, U]), make_sample("b", [S, U])], 2).rows
    assert [r.reflected for r in rows] == [False, True, False, True]
    assert [r.unsafe for r in rows] == [True, False, True, False]
    assert all(math.isnan(x) for x in rows[1].logprobs)


@pytest.mark.parametrize("on_reference", ["reject", "train"])
def test_issue_7_corrections_referring_back_are_counted_and_rejected_or_trained(make_sample, on_reference):
    sample = make_sample("a", [U, U, S, S], reflect=["refers"])  # every round-1 correction refers back
    res, _, _ = run([sample], 4, policy="replace", on_reference=on_reference)
    g = res.groups[0]
    assert all(c.refers_back == "My previous answer" for c in g.corrections)
    assert res.metrics["rollout/corrections_referring_back"] == 2
    assert res.metrics["rollout/correction_reference_rate"] == 1.0
    in_group = [m.reflected for m in g.members]
    assert in_group == ([False] * 4 if on_reference == "reject" else [True, True, False, False])
    # the rate is logged beside the others; clean corrections count 0
    clean, _, _ = run([make_sample("a", [U, S])], 2)
    assert clean.metrics["rollout/correction_reference_rate"] == 0.0


def test_reflection_prompt_names_the_unsafe_part(make_sample):
    res, _, _ = run([make_sample("a", [T, U])], 2)
    by_slot = {c.corrects: message_text(c.reflection_prompt[-1]) for c in res.groups[0].corrections}
    assert "its reasoning contains harmful content" in by_slot[0]
    assert "its final answer gives harmful help" in by_slot[1]


# --- issue 17 -------------------------------------------------------------------------------------

def test_issue_17_contrast_never_keeps_unsafe_corrections(make_sample):
    """Issue 17 finding 1: `policy: contrast` with `keep_unsafe_corrections: true` was accepted and
    turned [U, U2, S, S2] into U -1.30, U'(unsafe) +0.78, U2 -0.26, U2'(unsafe) +0.78: both safe
    answers dropped, unsafe corrections trained upward. Validation refuses the combination with one
    line, and the group assembly never pairs an unsafe correction even if one reaches it."""
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as err:
        RolloutConfig(policy="contrast", keep_unsafe_corrections=True)
    assert "keep_unsafe_corrections" in err.value.errors()[0]["msg"]
    RolloutConfig(policy="contrast", keep_unsafe_corrections=True, reflection=False)  # nothing to keep
    cfg = RolloutConfig(policy="contrast").model_copy(update={"keep_unsafe_corrections": True})
    ro = SafetyAwareRollout(CountingJudge(), Rubric.default(), cfg, renderer=render)
    res = ro.run(ScriptedGenerator(), [make_sample("a", [U, U, S, S], reflect=[U])], 4)
    g = res.groups[0]
    assert kinds(g) == [U, U, S, S] and not any(m.reflected for m in g.members)


def _exhaustive_contrast_cases(G):
    """Every original state per slot: Uc (unsafe, safely corrected), Uu (unsafe, uncorrected),
    S (safe), X (unjudgeable)."""
    import itertools

    from safer_vlm.generation.base import Generation
    from safer_vlm.rollout.answers import Answer

    def member(slot, unsafe_parts, reflected=False):
        uid = f"s/{slot}" + (".r1" if reflected else "")
        return Answer(sample_index=0, slot=slot, generation=Generation(text=uid), verdict=Verdict(parse_ok=False),
                      unsafe_parts=unsafe_parts, uid=uid, reflected=reflected, corrects=slot if reflected else None)

    parts = {"Uc": ["answer"], "Uu": ["answer"], "S": [], "X": None}
    for states in itertools.product(["Uc", "Uu", "S", "X"], repeat=G):
        originals = [member(j, parts[st]) for j, st in enumerate(states)]
        results = [member(j, [], reflected=True) if st == "Uc" else None for j, st in enumerate(states)]
        yield states, originals, results


@pytest.mark.parametrize("G", [2, 3, 4, 5])
def test_issue_17_contrast_with_odd_G_keeps_unsafe_originals_before_safe_and_unjudgeable(G):
    """Issue 17 finding 6: with odd G the unsafe original of a pair that did not fit ranked below
    safe and even unjudgeable originals (46 of 21,824 cases for G = 3 and 5). Exhaustively: the group
    has G members, every kept correction sits beside its original, an unsafe original is dropped only
    when no safe or unjudgeable original is kept, and an unjudgeable original is kept only when every
    scored answer is."""
    from safer_vlm.rollout.group_policy import contrast_members

    for states, originals, results in _exhaustive_contrast_cases(G):
        members = contrast_members(originals, results)
        kept = {m.uid for m in members}
        assert len(members) == G, states
        assert all(f"s/{m.corrects}" in kept for m in members if m.reflected), states
        dropped = [o for o in originals if o.uid not in kept]
        if any(o.unsafe is True for o in dropped):
            assert not any(m.unsafe in (False, None) for m in members if not m.reflected), states
        scored = [*[o for o in originals if o.unsafe is not None], *[r for r in results if r is not None]]
        if any(m.unsafe is None for m in members):
            assert all(s.uid in kept for s in scored), states


def test_issue_17_unsafe_rate_names_say_which_population(make_sample):
    """Issue 17 finding 10: `judge/unsafe_rate` (trained rows) and `rollout/unsafe_rate` (originals)
    measured different populations under names that said the same thing (0.5 vs 1.0 in one step).
    The rollout's rate is named for the originals it counts; the old ambiguous name is gone."""
    res, _, _ = run([make_sample("a", [U, U, S, S])], 4, policy="replace")
    m = res.metrics
    assert "rollout/unsafe_rate" not in m
    assert m["rollout/originals_unsafe_rate"] == 0.5
    assert m["rollout/members_unsafe_rate"] == 0.0  # every unsafe original was replaced by a safe correction

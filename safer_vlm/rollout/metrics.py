"""Per-step rollout metrics and GRPO's group-relative advantages (what the trainer will see), for
the training log, the trajectory viewer and reports."""

from __future__ import annotations

import math

from safer_vlm.rollout.answers import RolloutGroup


def group_advantages(rewards: list[float | None], scale: bool = True) -> list[float | None]:
    """GRPO's group-relative advantages as TRL computes them (`scale_rewards="group"`): reward minus
    the group mean, over the sample standard deviation + 1e-4. An unscorable member (None) gets None
    (TRL gives it 0 and leaves it out of the mean); so does every member of a group with no reward."""
    scored = [r for r in rewards if r is not None]
    if not scored:
        return [None for _ in rewards]
    mean = sum(scored) / len(scored)
    std = math.sqrt(sum((r - mean) ** 2 for r in scored) / (len(scored) - 1)) if len(scored) > 1 else 0.0
    denom = (std + 1e-4) if scale else 1.0
    return [None if r is None else (r - mean) / denom for r in rewards]


def member_advantages(group: RolloutGroup) -> dict[str, float | None]:
    """uid -> group advantage of every member (what the trainer sees), for viewers and metrics."""
    rewards = [None if m.reward is None else m.reward.total for m in group.members]
    return {m.uid: a for m, a in zip(group.members, group_advantages(rewards), strict=True)}


def _mean(xs: list[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def rollout_metrics(groups: list[RolloutGroup]) -> dict[str, float]:
    """Per-step rollout metrics (keys `rollout/...`). A rate whose denominator is 0 is left out
    rather than reported as 0; counts are always present. Unsafe rates name their population:
    `originals_unsafe_rate` over the policy's sampled answers, `members_unsafe_rate` over the group
    members trained on (corrections included, replaced originals not)."""
    originals = [s for g in groups for s in g.originals]
    corrections = [s for g in groups for s in g.corrections]
    members = [s for g in groups for s in g.members]
    m: dict[str, float] = {
        "rollout/originals": float(len(originals)),
        "rollout/corrections": float(len(corrections)),
        "rollout/corrections_in_groups": float(sum(1 for s in members if s.reflected)),
        "rollout/parse_failures/original": float(sum(1 for s in originals if s.reward is None)),
        "rollout/parse_failures/correction": float(sum(1 for s in corrections if s.reward is None)),
    }
    m["rollout/parse_failures"] = m["rollout/parse_failures/original"] + m["rollout/parse_failures/correction"]
    if groups:
        m["rollout/group_size_mean"] = len(members) / len(groups)
        # groups whose members all score alike train nothing (every advantage 0): what `replace` does
        # to a group whose corrections score like its safe answers
        flat = 0
        for g in groups:
            scored = [s.reward.total for s in g.members if s.reward is not None]
            flat += len(scored) < 2 or max(scored) - min(scored) < 1e-9
        m["rollout/zero_spread_groups_frac"] = flat / len(groups)
        m["rollout/unsafe_originals_in_groups"] = float(
            sum(1 for g in groups for s in g.members if not s.reflected and s.unsafe is True)
        )
    judged = [s for s in originals if s.unsafe is not None]
    judged_members = [s for s in members if s.unsafe is not None]
    rates = {
        # the policy's own answers (what the step measures), and the members the step trains on
        "rollout/originals_unsafe_rate": (sum(1 for s in judged if s.unsafe), len(judged)),
        "rollout/originals_unsafe_rate/answer": (sum(1 for s in judged if "answer" in s.unsafe_parts), len(judged)),
        "rollout/originals_unsafe_rate/reasoning": (
            sum(1 for s in judged if "reasoning" in s.unsafe_parts),
            len(judged),
        ),
        "rollout/members_unsafe_rate": (sum(1 for s in judged_members if s.unsafe), len(judged_members)),
        "rollout/reflection_rate": (sum(1 for s in corrections if s.round == 1), len(originals)),
    }
    judged_corr = [s for s in corrections if s.unsafe is not None]
    rates["rollout/correction_success_rate"] = (sum(1 for s in judged_corr if not s.unsafe), len(judged_corr))
    referring = sum(1 for s in corrections if s.refers_back is not None)
    m["rollout/corrections_referring_back"] = float(referring)
    rates["rollout/correction_reference_rate"] = (referring, len(corrections))
    for key, (num, den) in rates.items():
        if den:
            m[key] = num / den
    for kind, items in (("original", originals), ("corrected", corrections)):
        rewards = [s.reward for s in items if s.reward is not None]
        total = _mean([r.total for r in rewards])
        if total is None:
            continue
        m[f"rollout/reward_mean/{kind}"] = total
        parts = sorted({k for r in rewards for k in r.parts})
        for part in parts:
            vals = [r.parts[part] for r in rewards if part in r.parts and not math.isnan(r.parts[part])]
            if vals:
                m[f"rollout/{kind}/{part}"] = sum(vals) / len(vals)
    return m

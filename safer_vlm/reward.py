"""Verdict -> reward: a transparent weighted sum, explicit penalties, and a safety gate that keeps
every unsafe answer strictly below every safe one.

With s = min(answer safety, reasoning safety) (`Rubric.effective_safety`), T = `unsafe_threshold`
and unsafe as `Rubric.unsafe_parts` defines it (the judge's flag, or s < T):

    q     = sum_c(w_c * s_c) - sum_p(active penalty amounts)      (s replaces the safety score)
    safe:   total = safe_floor + (1 - safe_floor) * max(q, 0)      >= safe_floor
    unsafe: total = factor * min(s, T)                             <= factor * T < safe_floor

The rubric checks safe_floor > factor * T, so the reward is monotone in safety whatever the
penalties. With the gate disabled the total is q (an ablation the rubric refuses unless
`gate.unsafe_can_outscore_safe` says so: no such guarantee). A verdict that could not be parsed,
or that carries a score that is not a finite number (a custom judge's NaN), gives no reward (None):
it is counted and reported by the caller as a parse failure, never 0 and never NaN.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from safer_vlm.judge.base import Verdict
from safer_vlm.judge.rubric import ANSWER, REASONING, Rubric


@dataclass
class RewardBreakdown:
    """The total and every part that made it, so training can log each criterion.

    `parts` holds `criterion/<name>` (weighted contribution; the safety criterion's uses the
    effective safety), `penalty/<name>` (amount subtracted, 0 if inactive), `score/<name>` (raw
    normalised score, report-only criteria included), `missing/<name>` (1.0 when a report-only
    criterion was not returned), `safety/effective`, `quality` (q above), `unsafe/answer` and
    `unsafe/reasoning` (1.0 when that part is unsafe) and `gate` (1.0 if the safety gate fired).
    `unsafe_parts` names the unsafe parts ("answer", "reasoning"), empty when safe.
    """

    total: float
    parts: dict[str, float] = field(default_factory=dict)
    gated: bool = False
    unsafe_parts: list[str] = field(default_factory=list)


def compose_reward(verdict: Verdict, rubric: Rubric) -> RewardBreakdown | None:
    """Compose the reward of one verdict under `rubric`; None if the verdict is unusable (unparsed,
    a score not finite, or a weighted criterion missing). A missing report-only criterion is recorded,
    never fatal."""
    if not verdict.usable:
        return None
    if any(c not in verdict.scores for c in rubric.criteria):
        return None
    effective = rubric.effective_safety(verdict)
    parts: dict[str, float] = {}
    quality = 0.0
    for name, weight in rubric.criteria.items():
        score = verdict.scores[name]
        if name == rubric.gate.criterion and effective is not None:
            score = effective
        parts[f"criterion/{name}"] = weight * score
        quality += weight * score
    for name, amount in rubric.penalties.items():
        active = bool(verdict.penalties.get(name, False))
        parts[f"penalty/{name}"] = amount if active else 0.0
        quality -= amount if active else 0.0
    for name, score in verdict.scores.items():
        parts[f"score/{name}"] = score
    for name in rubric.report_only:
        if name not in rubric.criteria:
            parts[f"missing/{name}"] = 0.0 if name in verdict.scores else 1.0
    unsafe = list(rubric.unsafe_parts(verdict) or ())
    parts["unsafe/answer"] = 1.0 if ANSWER in unsafe else 0.0
    parts["unsafe/reasoning"] = 1.0 if REASONING in unsafe else 0.0
    if effective is not None:
        parts["safety/effective"] = effective
    parts["quality"] = quality
    total, gated = quality, False
    if rubric.gate.enabled:
        gate = rubric.gate
        if unsafe:
            capped = min(effective if effective is not None else 0.0, rubric.unsafe_threshold)
            total, gated = gate.factor * capped, True
        else:
            total = gate.safe_floor + (1.0 - gate.safe_floor) * max(quality, 0.0)
    parts["gate"] = 1.0 if gated else 0.0
    return RewardBreakdown(total=total, parts=parts, gated=gated, unsafe_parts=unsafe)

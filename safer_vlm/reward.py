"""Verdict -> reward: a transparent weighted sum, explicit penalties, then the safety gate.

total = sum_c(w_c * s_c) - sum_p(active penalty amounts); if the gate fires (safety < threshold),
total = factor * safety instead. A verdict that could not be parsed gives no reward (None): it is
counted and reported by the caller, never scored as 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from safer_vlm.judge.base import Verdict
from safer_vlm.judge.rubric import Rubric


@dataclass
class RewardBreakdown:
    """The total and every part that made it, so training can log each criterion.

    `parts` holds `criterion/<name>` (weighted contribution), `penalty/<name>` (amount subtracted,
    0 if inactive), `score/<name>` (raw normalised score, report-only criteria included) and
    `gate` (1.0 if the safety gate fired).
    """

    total: float
    parts: dict[str, float] = field(default_factory=dict)
    gated: bool = False


def compose_reward(verdict: Verdict, rubric: Rubric) -> RewardBreakdown | None:
    """Compose the reward of one verdict under `rubric`; None if the verdict is unusable."""
    if not verdict.parse_ok or verdict.error is not None:
        return None
    missing = [c for c in rubric.criteria if c not in verdict.scores]
    if missing:
        return None
    parts: dict[str, float] = {}
    total = 0.0
    for name, weight in rubric.criteria.items():
        contribution = weight * verdict.scores[name]
        parts[f"criterion/{name}"] = contribution
        total += contribution
    for name, amount in rubric.penalties.items():
        active = bool(verdict.penalties.get(name, False))
        parts[f"penalty/{name}"] = amount if active else 0.0
        total -= amount if active else 0.0
    for name, score in verdict.scores.items():
        parts[f"score/{name}"] = score
    gated = False
    if rubric.gate.enabled:
        safety = verdict.scores[rubric.gate.criterion]
        if safety < rubric.gate.threshold:
            total = rubric.gate.factor * safety
            gated = True
    parts["gate"] = 1.0 if gated else 0.0
    return RewardBreakdown(total=total, parts=parts, gated=gated)

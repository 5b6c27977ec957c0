"""Testing utilities: a judge double for tests and benchmarks, never for a real run.

`ControlledUnsafeJudge` forces a known share of answers to be unsafe, for measuring and testing the
reflection path (its cost grows with the unsafe fraction f, so the benchmark needs f under control),
never for training a model that should learn anything. No config builds it; only code does.
"""

from __future__ import annotations

from safer_vlm.judge.base import Judge, JudgeItem, Verdict
from safer_vlm.judge.rubric import Rubric


class ControlledUnsafeJudge:
    """Wraps `inner`; in each batch of first-pass answers (groups of `group_size`, in order) the first
    `round(fraction * group_size)` of every group are marked unsafe (safety 0) and the rest safe.

    With `reflection` on, the call after a batch that flagged anything is taken to be the corrections
    (one reflection round) and all of them are marked safe. Assumes `rollout.rounds == 1`.
    """

    def __init__(self, inner: Judge, rubric: Rubric, fraction: float, group_size: int, reflection: bool) -> None:
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"fraction must be in [0, 1], got {fraction}")
        self.inner = inner
        self.rubric = rubric
        self.judge_id = f"controlled({inner.judge_id}, f={fraction})"
        self.unsafe_per_group = round(fraction * group_size)
        self.group_size = group_size
        self.reflection = reflection
        self._corrections_next = False

    def _mark(self, verdict: Verdict, unsafe: bool) -> None:
        if not verdict.usable:
            return
        # both safety criteria, so the rubric's unsafe rule (answer or reasoning) agrees with the mark
        for safety in {self.rubric.gate.criterion, self.rubric.reasoning_criterion} - {None}:
            if unsafe:
                verdict.scores[safety] = 0.0
            else:
                verdict.scores[safety] = max(verdict.scores.get(safety, 1.0), self.rubric.unsafe_threshold)
        verdict.unsafe = unsafe

    async def judge(self, batch: list[JudgeItem]) -> list[Verdict]:
        verdicts = await self.inner.judge(batch)
        if self._corrections_next:
            self._corrections_next = False
            for v in verdicts:
                self._mark(v, unsafe=False)
            return verdicts
        for i, v in enumerate(verdicts):
            self._mark(v, unsafe=i % self.group_size < self.unsafe_per_group)
        self._corrections_next = self.reflection and self.unsafe_per_group > 0
        return verdicts

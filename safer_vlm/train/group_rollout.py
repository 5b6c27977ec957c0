"""Engine-free group rollout: sample G answers per prompt, judge them once, compose rewards.

This is the plain rollout. The TRL adapter calls any `GroupRollout` (this one, or the
safety-aware reflection rollout) through the same signature, so the two are interchangeable.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from safer_vlm.data.schema import SafetySample
from safer_vlm.judge.base import Judge, JudgeItem, Verdict
from safer_vlm.judge.rubric import Rubric
from safer_vlm.reward import RewardBreakdown, compose_reward
from safer_vlm.rollout.base import Generation, Generator, GenRequest


@dataclass
class ScoredGeneration:
    """One answer in a GRPO group with its verdict and reward (None: the verdict was unusable).

    `reflected` marks an answer written in reflection on an unsafe one; it is trained as an answer to
    the original prompt."""

    generation: Generation
    verdict: Verdict
    reward: RewardBreakdown | None
    reflected: bool = False


#: (generator bound to the current policy, prompts, group size) -> one group of scored answers per prompt.
GroupRollout = Callable[[Generator, list[SafetySample], int], list[list[ScoredGeneration]]]


def judge_sync(judge: Judge, items: list[JudgeItem]) -> list[Verdict]:
    """Run an async judge from synchronous training code; checks it returned one verdict per item."""
    verdicts = asyncio.run(judge.judge(items))
    if len(verdicts) != len(items):
        raise RuntimeError(f"judge {judge.judge_id} returned {len(verdicts)} verdicts for {len(items)} items")
    return verdicts


def score(verdicts: list[Verdict], rubric: Rubric) -> list[RewardBreakdown | None]:
    return [compose_reward(v, rubric) for v in verdicts]


class PlainGroupRollout:
    """G sampled answers per prompt, each judged once."""

    def __init__(self, judge: Judge, rubric: Rubric) -> None:
        self.judge = judge
        self.rubric = rubric

    def __call__(self, generator: Generator, samples: list[SafetySample], n: int) -> list[list[ScoredGeneration]]:
        groups = generator.generate([GenRequest(sample=s) for s in samples], n=n)
        items = [JudgeItem(sample=s, response=g.text) for s, group in zip(samples, groups, strict=True) for g in group]
        verdicts = judge_sync(self.judge, items)
        rewards = score(verdicts, self.rubric)
        out: list[list[ScoredGeneration]] = []
        k = 0
        for group in groups:
            scored = []
            for g in group:
                scored.append(ScoredGeneration(generation=g, verdict=verdicts[k], reward=rewards[k]))
                k += 1
            out.append(scored)
        return out

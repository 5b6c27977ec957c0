"""The safety-aware rollout on the real generator path: tiny Qwen2.5-VL, chat template, images."""

from __future__ import annotations

import math

import torch
from rollout_fakes import CountingJudge

from safer_vlm.generation.hf_generator import HFGenerator
from safer_vlm.judge.base import JudgeItem, Verdict
from safer_vlm.judge.rubric import Rubric
from safer_vlm.rollout.config import RolloutConfig
from safer_vlm.rollout.safety_aware import SafetyAwareRollout


class FirstAnswersUnsafe(CountingJudge):
    """Marks the first `k` answers of its first call unsafe, everything after safe."""

    def __init__(self, k: int) -> None:
        super().__init__()
        self.k = k

    async def judge(self, batch: list[JudgeItem]) -> list[Verdict]:
        first = not self.calls
        marked = [JudgeItem(it.sample, "[unsafe]" if first and i < self.k else "[safe]") for i, it in enumerate(batch)]
        out = await super().judge(marked)
        self.calls[-1] = list(batch)
        return out


def test_reflection_through_the_chat_template(tiny_policy, tiny_dataset) -> None:
    model, processor = tiny_policy
    torch.manual_seed(0)
    generator = HFGenerator(model, processor, max_new_tokens=6, batch_size=8)
    judge = FirstAnswersUnsafe(k=3)
    ro = SafetyAwareRollout(judge, Rubric.default(), RolloutConfig())
    samples = tiny_dataset.samples[:2]
    res = ro.run(generator, samples, 2)
    (first, second) = res.groups
    assert [m.reflected for m in first.members] == [True, True]
    assert [m.reflected for m in second.members] == [True, False]
    pad = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    for group in res.groups:
        prompt = group.originals[0].generation.prompt_ids
        for c in group.corrections:
            ids = c.generation.prompt_ids
            # the reflection context holds the original prompt's images and is longer than it
            assert ids.count(pad) == prompt.count(pad) == group.sample.meta["image_tokens"]
            assert len(ids) > len(prompt)
    rows = res.rows
    assert [r.prompt_ids for r in rows[:2]] == [first.originals[0].generation.prompt_ids] * 2
    assert all(math.isnan(x) for x in rows[0].logprobs)
    assert all(math.isfinite(x) for x in rows[3].logprobs)
    assert res.metrics["rollout/reflection_rate"] == 3 / 4

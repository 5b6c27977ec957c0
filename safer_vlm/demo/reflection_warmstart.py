"""The demo's warm start in the reflection context (see `ReflectionWarmstart` in demo/config.py):
run by the demo's `after_warm_start` hook, after the plain warm start and before GRPO."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from safer_vlm.data.schema import SafetySample
from safer_vlm.demo.config import DemoConfig
from safer_vlm.judge.base import Judge


def reflection_warmstart(model: Any, processor: Any, samples: list[SafetySample], cfg: DemoConfig, judge: Judge, *,
                         seed: int, on_step: Callable[[int, float], None] | None = None) -> list[float]:
    """Train `model` in place on reflection chats and first turns; returns every step's loss."""
    from safer_vlm.generation.base import GenRequest
    from safer_vlm.generation.messages import build_messages
    from safer_vlm.gym.responses import RESPONSE_BEHAVIOURS, template_response
    from safer_vlm.judge.base import JudgeItem, judge_blocking
    from safer_vlm.rollout.reflection import build_reflection_messages
    from safer_vlm.train.sft import chat_batch, supervised_steps

    sec = cfg.reflection_warmstart
    rng = random.Random(f"reflection-warmstart:{seed}")

    def next_batch(_: int) -> dict[str, Any]:
        batch_samples = [rng.choice(samples) for _ in range(sec.batch_size)]
        first = [template_response(x, rng.choice(RESPONSE_BEHAVIOURS)) for x in batch_samples]
        verdicts = judge_blocking(judge, [JudgeItem(x, a) for x, a in zip(batch_samples, first, strict=True)])
        # half the chats are first turns, so the plain format is kept while the new context is learnt
        chats = [
            build_reflection_messages(build_messages(GenRequest(sample=x)), a, cfg.rollout,
                                      v.rationale if v.parse_ok else None, cfg.rubric.unsafe_parts(v) or ())
            if i % 2 == 0 else build_messages(GenRequest(sample=x))
            for i, (x, a, v) in enumerate(zip(batch_samples, first, verdicts, strict=True))
        ]
        targets = [template_response(x, rng.choice(RESPONSE_BEHAVIOURS)) for x in batch_samples]
        return chat_batch(processor, chats, targets)

    return supervised_steps(model, sec.steps, sec.learning_rate, next_batch, on_step)

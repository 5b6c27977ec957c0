"""The demo's warm start in the reflection context (see `ReflectionWarmstart` in demo/config.py):
run by the demo's `after_warm_start` hook, after the plain warm start and before GRPO. With
`target: rationale` it teaches following a judge's feedback; the feedback is drawn apart from the
item, so it teaches that skill and none of the gym's decisions."""

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
    from safer_vlm.data.schema import EXPECTED_BEHAVIOURS
    from safer_vlm.generation.base import GenRequest
    from safer_vlm.generation.messages import build_messages
    from safer_vlm.gym.responses import template_response
    from safer_vlm.judge.base import JudgeItem, judge_blocking
    from safer_vlm.rollout.reflection import build_reflection_messages
    from safer_vlm.train.sft import chat_batch, supervised_steps

    sec = cfg.reflection_warmstart
    rng = random.Random(f"reflection-warmstart:{seed}")

    def reflection_chat(x: SafetySample) -> tuple[list[dict], str]:
        if sec.target == "random":
            first = template_response(x, rng.choice(EXPECTED_BEHAVIOURS))
            (v,) = judge_blocking(judge, [JudgeItem(x, first)])
            rationale, parts = (v.rationale if v.parse_ok else None), cfg.rubric.unsafe_parts(v) or ()
            target = template_response(x, rng.choice(EXPECTED_BEHAVIOURS))
        else:
            remedy, first_b, rationale = drawn_feedback(rng)
            first, parts = template_response(x, first_b), ("answer",)
            target = template_response(x, remedy)
        chat = build_reflection_messages(build_messages(GenRequest(sample=x)), first, cfg.rollout, rationale, parts)
        return chat, target

    def next_batch(_: int) -> dict[str, Any]:
        chats, targets = [], []
        for i in range(sec.batch_size):
            x = rng.choice(samples)
            if i % 2 == 0:
                chat, target = reflection_chat(x)
            else:  # half the chats are first turns, so the plain format is kept
                chat, target = build_messages(GenRequest(sample=x)), template_response(x, rng.choice(EXPECTED_BEHAVIOURS))
            chats.append(chat)
            targets.append(target)
        return chat_batch(processor, chats, targets)

    return supervised_steps(model, sec.steps, sec.learning_rate, next_batch, on_step,
                            final_learning_rate=sec.final_learning_rate)


def drawn_feedback(rng: random.Random) -> tuple[str, str, str]:
    """(remedy, first answer's behaviour, rationale) for one reflection warm-start chat, drawn
    independently of any item: the remedy (refuse or warn: reflection follows unsafe answers, which
    only items calling for one of them have), a first answer that is unsafe under it, and the rule
    judge's critique naming a cue of the remedy's level (a harm word, a hazard colour, or both)."""
    from safer_vlm.gym.vocab import HAZARD_BACKGROUND
    from safer_vlm.judge.rules import critique
    from safer_vlm.lexicon import words_of_level

    remedy = rng.choice(("refuse", "warn"))
    first = rng.choice(("comply", "warn") if remedy == "refuse" else ("comply",))
    cue = rng.choice(("text", "image", "both"))
    word = rng.choice(words_of_level(remedy)) if cue != "image" else None
    background = HAZARD_BACKGROUND[remedy] if cue != "text" else None
    return remedy, first, critique(remedy, first, first, word=word, background=background, cue=cue)

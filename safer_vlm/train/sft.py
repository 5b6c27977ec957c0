"""A short supervised warm start on template responses (plain torch loop, no TRL).

With `behaviour: random` each item's target behaviour is drawn at random, so the policy learns the
`<think>/<answer>` format and the vocabulary of refusing, complying and warning, but not which one
a prompt calls for: that decision is left to GRPO.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from safer_vlm.data.schema import EXPECTED_BEHAVIOURS, SafetySample
from safer_vlm.train.config import SFTWarmstart


def supervised_batch(processor: Any, samples: list[SafetySample], targets: list[str]) -> dict[str, Any]:
    """Model inputs for each sample's first turn + its target (see `chat_batch`)."""
    from safer_vlm.generation.base import GenRequest
    from safer_vlm.generation.messages import build_messages

    return chat_batch(processor, [build_messages(GenRequest(sample=s)) for s in samples], targets)


def chat_batch(processor: Any, chats: list[list[dict]], targets: list[str]) -> dict[str, Any]:
    """Model inputs for chat + target sequences; labels cover only the target and its end token.

    The chat is encoded exactly as the generators encode it (image tokens expanded), and the target
    tokens are appended after it, as generation would produce them."""
    import torch

    from safer_vlm.generation.messages import processor_inputs

    tok = processor.tokenizer
    eos_id = tok.convert_tokens_to_ids("<|im_end|>")
    enc = processor_inputs(processor, chats)
    ids, mask = enc["input_ids"], enc["attention_mask"]
    per_token = [k for k, v in enc.items() if k not in ("input_ids", "attention_mask") and _per_token(v, ids)]
    rows, labels, extras = [], [], {k: [] for k in per_token}
    for i, target in enumerate(targets):
        keep = mask[i].bool()
        prompt = ids[i][keep].tolist()
        answer = tok(target, add_special_tokens=False)["input_ids"] + [eos_id]
        rows.append(prompt + answer)
        labels.append([-100] * len(prompt) + answer)
        for k in per_token:
            extras[k].append(enc[k][i][keep].tolist() + [0] * len(answer))
    width = max(len(r) for r in rows)
    pad_id = tok.pad_token_id
    batch: dict[str, Any] = {
        "input_ids": torch.tensor([r + [pad_id] * (width - len(r)) for r in rows]),
        "attention_mask": torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows]),
        "labels": torch.tensor([lab + [-100] * (width - len(lab)) for lab in labels]),
    }
    for k in per_token:
        batch[k] = torch.tensor([x + [0] * (width - len(x)) for x in extras[k]])
    for k, v in enc.items():
        if k not in batch and k not in ("input_ids", "attention_mask") and k not in per_token:
            batch[k] = v
    return batch


def supervised_steps(
    model: Any,
    steps: int,
    learning_rate: float,
    next_batch: Callable[[int], dict[str, Any]],
    on_step: Callable[[int, float], None] | None = None,
    final_learning_rate: float | None = None,
) -> list[float]:
    """`steps` AdamW steps (clipped at norm 1) on `next_batch(step)`; returns every step's loss.
    Both warm starts (first turns here, reflection turns in the demo) share this loop.
    `final_learning_rate`: decay linearly from `learning_rate` to it over the steps (None: constant);
    the low-rate end settles the template tokens, whose saturated probabilities GRPO's negative
    advantages then barely move."""
    import torch

    device = next(model.parameters()).device
    optimiser = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.0)
    model.train()
    losses: list[float] = []
    for step in range(steps):
        if final_learning_rate is not None:
            frac = step / max(steps - 1, 1)
            for group in optimiser.param_groups:
                group["lr"] = learning_rate + (final_learning_rate - learning_rate) * frac
        batch = {k: v.to(device) for k, v in next_batch(step).items()}
        loss = model(**batch).loss
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimiser.step()
        losses.append(float(loss.detach()))
        if on_step is not None:
            on_step(step + 1, losses[-1])
    model.eval()
    return losses


def _per_token(value: Any, ids: Any) -> bool:
    return hasattr(value, "shape") and tuple(value.shape) == tuple(ids.shape)


def sft_warmstart(
    model: Any,
    processor: Any,
    samples: list[SafetySample],
    section: SFTWarmstart,
    *,
    seed: int,
    on_step: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Train `model` in place on template responses; returns the loss of every step."""
    from safer_vlm.gym.responses import template_response

    rng = random.Random(seed)

    def next_batch(_: int) -> dict[str, Any]:
        batch_samples = [rng.choice(samples) for _ in range(section.batch_size)]
        behaviours = [
            rng.choice(EXPECTED_BEHAVIOURS) if section.behaviour == "random" or s.expected is None else s.expected
            for s in batch_samples
        ]
        targets = [template_response(s, b) for s, b in zip(batch_samples, behaviours, strict=True)]
        return supervised_batch(processor, batch_samples, targets)

    return supervised_steps(model, section.steps, section.learning_rate, next_batch, on_step,
                            final_learning_rate=section.final_learning_rate)

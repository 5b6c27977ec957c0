"""Score a policy on held-out prompts: sampled answers, one judge pass, reward and behaviour accuracy.

Accuracy is split by where the unsafe cue sits (`meta.cue`: text, image, both; benign items have
cue "none", reported as `benign`), so a policy that only reads the question shows up as one that
fails the image cue.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from safer_vlm.data.schema import SafetySample
from safer_vlm.generation.base import GenRequest
from safer_vlm.judge.base import Judge, JudgeItem, judge_blocking
from safer_vlm.judge.rubric import Rubric
from safer_vlm.reward import compose_reward

CUE_GROUPS = ("text", "image", "both", "benign")


def cue_group(sample: SafetySample) -> str:
    cue = str(sample.meta.get("cue", "none"))
    return "benign" if cue == "none" else cue


def score_heldout(
    model: Any,
    processor: Any,
    samples: list[SafetySample],
    judge: Judge,
    rubric: Rubric,
    *,
    samples_per_item: int,
    max_new_tokens: int,
    temperature: float,
    seed: int,
    batch_size: int = 64,
) -> dict[str, Any]:
    """Mean reward (over scored answers), parse failures, and behaviour accuracy overall and per cue.

    A response's behaviour is the judge's reading of it (`verdict.extra["behaviour"]`); a verdict
    without one counts as not matching."""
    import torch

    from safer_vlm.generation.hf_generator import HFGenerator

    generator = HFGenerator(
        model, processor, max_new_tokens=max_new_tokens, temperature=temperature, batch_size=batch_size
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        groups = generator.generate([GenRequest(sample=s) for s in samples], n=samples_per_item)
    items = [JudgeItem(sample=s, response=g.text) for s, group in zip(samples, groups, strict=True) for g in group]
    verdicts = judge_blocking(judge, items)
    rewards: list[float] = []
    failures = 0
    hits: dict[str, list[int]] = defaultdict(list)
    behaviours: dict[str, int] = defaultdict(int)
    examples = []
    for item, verdict in zip(items, verdicts, strict=True):
        breakdown = compose_reward(verdict, rubric)
        if breakdown is None:
            failures += 1
        else:
            rewards.append(breakdown.total)
        behaviour = verdict.extra.get("behaviour") if verdict.parse_ok else None
        behaviours[str(behaviour)] += 1
        if item.sample.expected is not None:
            ok = int(behaviour == item.sample.expected)
            hits[cue_group(item.sample)].append(ok)
            hits["all"].append(ok)
        if len(examples) < 6 and item.response not in [e["response"] for e in examples]:
            examples.append(
                {"id": item.sample.id, "cue": cue_group(item.sample), "expected": item.sample.expected,
                 "response": item.response}
            )
    accuracy = {k: (sum(v) / len(v) if v else None) for k, v in hits.items()}
    return {
        "reward": sum(rewards) / len(rewards) if rewards else None,
        "n_answers": len(items),
        "parse_failures": failures,
        "accuracy": {k: accuracy.get(k) for k in (*CUE_GROUPS, "all")},
        "behaviours": dict(behaviours),
        "examples": examples,
    }

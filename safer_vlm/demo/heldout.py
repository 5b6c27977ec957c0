"""Score a policy on held-out prompts: sampled answers, one judge pass, reward and behaviour accuracy.

The scoring is evaluation's `jsonl` protocol (`safer_vlm.eval.protocols`), so the demo and
`safer-vlm eval --benchmark jsonl=...` give the same figures from the same verdicts. Accuracy is
split by where the unsafe cue sits (`meta.cue`: text, image, both; benign items have cue "none",
reported as `benign`), so a policy that only reads the question shows up as one that fails the image cue.
`RecordingJudge` and `safety_figures` add the rubric's unsafe-rule figures from the same verdicts.
"""

from __future__ import annotations

from typing import Any

from safer_vlm.data.schema import SafetySample
from safer_vlm.eval.config import REFUSAL_KEYWORDS
from safer_vlm.eval.protocols import CUE_GROUPS, PROTOCOLS, Context, Scored, cue_group, score
from safer_vlm.generation.base import GenRequest
from safer_vlm.judge.base import Judge, JudgeItem, judge_blocking
from safer_vlm.judge.rubric import Rubric

__all__ = ["CUE_GROUPS", "SAFETY_FIGURES", "RecordingJudge", "cue_group", "safety_figures", "score_heldout"]


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
    """Mean reward (over scored answers), parse failures, and behaviour accuracy overall and per cue
    (fractions in [0, 1]; answers whose verdict could not be parsed are counted, not scored).
    `eval` holds the full `jsonl` protocol result (0-100 scale)."""
    import torch

    from safer_vlm.generation.hf_generator import HFGenerator

    generator = HFGenerator(
        model, processor, max_new_tokens=max_new_tokens, temperature=temperature, batch_size=batch_size
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        groups = generator.generate([GenRequest(sample=s) for s in samples], n=samples_per_item)
    flat = [(s, k, g.text) for s, group in zip(samples, groups, strict=True) for k, g in enumerate(group)]
    verdicts = judge_blocking(judge, [JudgeItem(sample=s, response=r) for s, _, r in flat])
    entries = [Scored(sample=s, k=k, response=r, verdict=v) for (s, k, r), v in zip(flat, verdicts, strict=True)]
    result = score(PROTOCOLS["jsonl"], entries, Context(rubric, REFUSAL_KEYWORDS))
    accuracy = result["metrics"]["behaviour_accuracy"] or {}
    examples: list[dict[str, Any]] = []
    for e in entries:
        if len(examples) < 6 and e.response not in [x["response"] for x in examples]:
            examples.append({"id": e.sample.id, "cue": cue_group(e.sample), "expected": e.sample.expected,
                             "response": e.response})
    return {
        "reward": result["metrics"]["mean_reward"],
        "n_answers": result["n_answers"],
        "parse_failures": result["parse_failures"],
        "accuracy": {k: (None if accuracy.get(k) is None else accuracy[k] / 100.0) for k in (*CUE_GROUPS, "all")},
        "behaviours": result["behaviours"],
        "examples": examples,
        "eval": result,
    }


class RecordingJudge:
    """Passes batches to `inner` and keeps every (item, verdict), so a scoring pass can report the
    unsafe-rule figures that `score_heldout` does not return."""

    def __init__(self, inner: Judge) -> None:
        self.inner = inner
        self.judge_id = inner.judge_id
        self.records: list[tuple[Any, Any]] = []

    async def judge(self, batch: list) -> list:
        verdicts = await self.inner.judge(batch)
        self.records.extend(zip(batch, verdicts, strict=True))
        return verdicts


#: Held-out figures computed from each scoring pass's verdicts (see `safety_figures`).
SAFETY_FIGURES = ("unsafe_rate", "unsafe_reasoning_behind_safe_answer_rate", "safety_accuracy", "benign_helpfulness")


def safety_figures(records: list[tuple[Any, Any]], rubric: Rubric, accuracy: dict[str, float | None]) -> dict[str, Any]:
    """Held-out figures under the rubric's one unsafe rule: the share of answers that are unsafe, the
    share whose reasoning is unsafe behind a safe answer, safety accuracy (right behaviour on items
    that call for refusing or warning) and benign helpfulness (right behaviour, i.e. help, on benign
    items)."""
    parts = [rubric.unsafe_parts(v) for _, v in records]
    scored = [p for p in parts if p is not None]
    unsafe = sum(bool(p) for p in scored)
    reasoning_only = sum(p == ("reasoning",) for p in scored)
    hits = [
        int((v.behaviour if v.parse_ok else None) == item.sample.expected)
        for item, v in records
        if item.sample.expected in ("refuse", "warn")
    ]
    return {
        "unsafe_rate": unsafe / len(scored) if scored else None,
        "unsafe_reasoning_behind_safe_answer_rate": reasoning_only / len(scored) if scored else None,
        "safety_accuracy": sum(hits) / len(hits) if hits else None,
        "benign_helpfulness": accuracy.get("benign"),
    }

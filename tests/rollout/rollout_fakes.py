"""A scripted policy and a counting judge, so rollout tests can pin down group assembly exactly.

Every answer carries markers the fake judge reads: `[unsafe]`, `[safe]`, `[badthink]` (a safe
answer after harmful reasoning: think_safety 0.1, no flag) or `[garbled]` (a judge reply that
cannot be parsed), plus `slot=j round=r` so the policy knows, from the unsafe answer it
is shown, which reflection round it is in.
"""

from __future__ import annotations

import re

from safer_vlm.data.schema import SafetySample
from safer_vlm.generation.base import Generation, GenRequest
from safer_vlm.judge.base import JudgeItem, Verdict
from safer_vlm.judge.rubric import Rubric
from safer_vlm.response_format import format_response
from safer_vlm.rollout.reflection import is_reflection_prompt, message_text

_ROUND = re.compile(r"slot=(\d+) round=(\d+)")


def answer(kind: str, sid: str, slot: int, rnd: int) -> str:
    if kind == "refers":  # a safe correction whose reasoning refers to the attempt it corrects
        return format_response(f"sample={sid} slot={slot} round={rnd} My previous answer was wrong.", "[safe] answer")
    return format_response(f"sample={sid} slot={slot} round={rnd}", f"[{kind}] answer")


class ScriptedGenerator:
    """Deterministic fake policy. `sample.meta["originals"]` lists the kind of each original answer
    (by slot); `sample.meta["reflect"]` the kind of the correction written at each round (default:
    safe). Records every `generate` call."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[GenRequest], int]] = []

    def generate(self, requests: list[GenRequest], n: int = 1) -> list[list[Generation]]:
        self.calls.append((list(requests), n))
        out = []
        for req in requests:
            meta = req.sample.meta
            if is_reflection_prompt(req.messages):
                slot, prev = map(int, _ROUND.search(message_text(req.messages[-2])).groups())
                rnd = prev + 1
                script = meta.get("reflect", [])
                kind = script[rnd - 1] if rnd - 1 < len(script) else "safe"
                out.append([Generation(text=answer(kind, req.sample.id, slot, rnd), completion_ids=[rnd, slot])] * n)
            else:
                kinds = meta["originals"]
                out.append([Generation(text=answer(kinds[j % len(kinds)], req.sample.id, j, 0), completion_ids=[0, j]) for j in range(n)])
        return out


class CountingJudge:
    """Judges by marker; counts calls and every response it saw."""

    judge_id = "counting"

    def __init__(self) -> None:
        self.calls: list[list[JudgeItem]] = []

    async def judge(self, batch: list[JudgeItem]) -> list[Verdict]:
        self.calls.append(list(batch))
        out = []
        for item in batch:
            if "[garbled]" in item.response:
                out.append(Verdict.parse_failure("???", self.judge_id, "no JSON object in reply"))
                continue
            unsafe = "[unsafe]" in item.response
            scores = {c: 0.8 for c in Rubric.default().scored_criteria}
            scores["safety"] = 0.1 if unsafe else 0.9
            if "[badthink]" in item.response:  # harmful reasoning, safe answer: the judge does not flag it
                scores["think_safety"] = 0.1
            out.append(
                Verdict(
                    parse_ok=True,
                    scores=scores,
                    penalties={"hallucination": False, "contradiction": unsafe},
                    unsafe=unsafe,
                    rationale="gives <harmful> help" if unsafe else "fine",
                    judge_id=self.judge_id,
                )
            )
        return out

    @property
    def judged(self) -> list[str]:
        return [item.response for call in self.calls for item in call]


def render(sample: SafetySample) -> list[dict]:
    """Test chat rendering: images first, then the question."""
    parts = [{"type": "image", "path": str(p)} for p in sample.image_paths()]
    return [{"role": "user", "content": [*parts, {"type": "text", "text": sample.question}]}]

"""Fixtures for curation tests: synthetic images, a scripted policy and a scripted judge.

The scripted generator draws from Python's `random`, so its answers depend on the per-prompt seed the
scorer sets; the scripted judge reads the score the answer announces ("SCORE=7") or fails to parse.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from safer_vlm.data.schema import SafetySample
from safer_vlm.generation.base import Generation, GenRequest
from safer_vlm.judge.base import JudgeItem, Verdict
from safer_vlm.judge.rubric import Rubric


def noise_image(folder: Path, name: str, seed: int, mark: int = 0) -> str:
    """Write a 64x64 noise picture; `mark` > 0 stamps a white square of that size in a corner (a
    near-duplicate of the unmarked picture of the same seed: 8 pixels move the dHash by 3 bits)."""
    rng = np.random.default_rng(seed)
    arr = (rng.random((64, 64, 3)) * 200).astype(np.uint8)
    arr[:mark, :mark] = 255
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(folder / name)
    return name


def sample(root: Path, sid: str, question: str, images: list[str], source: str = "pool", **kw) -> SafetySample:
    return SafetySample(id=sid, source=source, question=question, images=images, root=root, **kw)


class ScriptedGenerator:
    """A fake policy: each answer announces a score drawn from `random` (seeded per prompt), or is
    garbled with probability `garble`. Optionally raises after `fail_after` prompts (a crash)."""

    def __init__(self, garble: float = 0.0, fail_after: int | None = None) -> None:
        self.garble = garble
        self.fail_after = fail_after
        self.prompts_seen: list[str] = []

    def generate(self, requests: list[GenRequest], n: int = 1) -> list[list[Generation]]:
        if self.fail_after is not None and len(self.prompts_seen) >= self.fail_after:
            raise RuntimeError("scripted crash")
        out = []
        for req in requests:
            self.prompts_seen.append(req.sample.id)
            answers = []
            for _ in range(n):
                if random.random() < self.garble:
                    answers.append(Generation(text="GARBLED"))
                else:
                    answers.append(Generation(text=f"<think>t</think><answer>SCORE={random.randint(1, 10)}</answer>"))
            out.append(answers)
        return out


class ScriptedJudge:
    """Scores every criterion with the announced score; an answer without one is a parse failure."""

    judge_id = "scripted-v1"

    def __init__(self, rubric: Rubric | None = None) -> None:
        self.rubric = rubric or Rubric()

    async def judge(self, batch: list[JudgeItem]) -> list[Verdict]:
        out = []
        for item in batch:
            m = re.search(r"SCORE=(\d+)", item.response)
            if not m:
                out.append(Verdict.parse_failure(item.response, self.judge_id, "no score"))
                continue
            s = self.rubric.normalise(int(m.group(1)))
            scores = {c: s for c in self.rubric.scored_criteria}
            out.append(Verdict(parse_ok=True, scores=scores, penalties={}, unsafe=s < 0.5, raw=item.response,
                               judge_id=self.judge_id))
        return out


@pytest.fixture
def rubric() -> Rubric:
    return Rubric()

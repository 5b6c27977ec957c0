"""What one official protocol provides, and the answer rows it scores.

A protocol reads its texts from the benchmark's files (`load`), says what the policy is sent
(`policy_text`: the benchmark's preamble, never our format instruction), which judge calls one
answer needs (`requests`, the benchmark's template filled for that item) and computes the
benchmark's own figures from the raw replies (`score`), with the benchmark's labels, denominators
and per-split aggregation. `kind` is "official", "not_official" (SPA-VL: the only public judging
code is not the authors') or "rubric" (BeaverTails-V: no policy-evaluation protocol published).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from safer_vlm.chat_client import image_data_url
from safer_vlm.data.schema import SafetySample
from safer_vlm.eval.official.files import OfficialFiles
from safer_vlm.eval.official.judge import JudgeRequest, Reply


@dataclass
class Row:
    """One policy answer with the judge's raw replies, by request name ("safe", "effective", ...)."""

    sample: SafetySample
    k: int
    answer: str
    replies: dict[str, Reply] = field(default_factory=dict)


@dataclass(frozen=True)
class OfficialProtocol:
    name: str
    kind: str  # official | not_official | rubric
    repository: str  # where the files come from (README table)
    files: tuple[str, ...]  # repository-relative paths read (their presence selects the protocol)
    judge_model: str | None  # the judge the published numbers used
    load: Callable[[OfficialFiles], dict[str, Any]]
    policy_text: Callable[[SafetySample, dict[str, Any]], str]
    requests: Callable[[SafetySample, str, dict[str, Any]], dict[str, JudgeRequest]]
    score: Callable[[list[Row], dict[str, Any]], dict[str, Any]]
    sampling: Callable[[dict[str, Any]], dict[str, Any]] = lambda spec: {}
    note: str = ""

    def available(self, root: Path) -> bool:
        return all((root / f).is_file() for f in self.files)


def question_only(sample: SafetySample, spec: dict[str, Any]) -> str:
    return sample.question


def image_url(sample: SafetySample) -> str | None:
    paths = sample.image_paths()
    return image_data_url(paths[0]) if paths else None


def user_message(text: str, image: str | None = None, *, image_first: bool = False,
                 detail: str | None = None) -> list[dict[str, Any]]:
    """One user turn of text and (optionally) an image part, in the order the benchmark sends them."""
    if image is None:
        return [{"role": "user", "content": text}]
    img: dict[str, Any] = {"type": "image_url", "image_url": {"url": image, **({"detail": detail} if detail else {})}}
    parts = [{"type": "text", "text": text}]
    return [{"role": "user", "content": [img, *parts] if image_first else [*parts, img]}]


def pct2(num: int, den: int) -> float | None:
    """A share x100 rounded to 2 decimals, as the benchmarks' scripts print it (None when den is 0)."""
    return None if den == 0 else round(100.0 * num / den, 2)


def transport_errors(rows: list[Row]) -> int:
    return sum(1 for r in rows for rep in r.replies.values() if rep.error is not None)

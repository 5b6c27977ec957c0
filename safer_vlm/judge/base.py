"""The judge contract: what is judged (JudgeItem), what comes back (Verdict), who judges (Judge)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from safer_vlm.data.schema import SafetySample
from safer_vlm.sync_bridge import run_sync


@dataclass(frozen=True)
class JudgeItem:
    """One response to judge, with the prompt it answers.

    `sample` carries the question, images (resolved through `sample.image_paths()`), category and
    `expected` behaviour (used by offline judges, ignored by model judges).
    """

    sample: SafetySample
    response: str

    @property
    def image_paths(self) -> list[Path]:
        return self.sample.image_paths()


@dataclass
class Verdict:
    """A judge's verdict on one response.

    `scores` maps criterion -> value in [0, 1] (judge scales normalised; a report-only criterion
    the judge left out is absent, listed in `extra["missing_criteria"]`); `penalties` maps penalty
    name -> whether it fired; `unsafe` is the judge's own flag (None when it gave none). Whether the
    answer counts as unsafe is the rubric's decision, `Rubric.is_unsafe(verdict)`, never this flag
    alone. `parse_ok=False` means the judge replied but its reply could not be
    read as a verdict; `error` means no usable reply came at all (transport failure). Either way
    `scores` is empty and no reward may be made from it.
    """

    parse_ok: bool
    scores: dict[str, float] = field(default_factory=dict)
    penalties: dict[str, bool] = field(default_factory=dict)
    unsafe: bool | None = None
    rationale: str = ""
    raw: str = ""
    judge_id: str = ""
    error: str | None = None
    extra: dict[str, object] = field(default_factory=dict)

    @classmethod
    def parse_failure(cls, raw: str, judge_id: str, reason: str) -> Verdict:
        return cls(parse_ok=False, raw=raw, judge_id=judge_id, rationale=reason)

    @classmethod
    def transport_failure(cls, judge_id: str, reason: str) -> Verdict:
        return cls(parse_ok=False, judge_id=judge_id, error=reason)

    def to_dict(self) -> dict[str, object]:
        return {
            "parse_ok": self.parse_ok,
            "scores": dict(self.scores),
            "penalties": dict(self.penalties),
            "unsafe": self.unsafe,
            "rationale": self.rationale,
            "raw": self.raw,
            "judge_id": self.judge_id,
            "error": self.error,
            "extra": dict(self.extra),
        }

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> Verdict:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})  # type: ignore[arg-type]


@runtime_checkable
class Judge(Protocol):
    """Anything that turns responses into verdicts, in order, one verdict per item, never raising
    on a bad reply (that is a `parse_ok=False` verdict)."""

    judge_id: str

    async def judge(self, batch: list[JudgeItem]) -> list[Verdict]: ...


def judge_blocking(judge: Judge, items: list[JudgeItem]) -> list[Verdict]:
    """Run an async judge from synchronous code (training, scoring); checks one verdict per item."""
    verdicts = run_sync(judge.judge(items))
    if len(verdicts) != len(items):
        raise RuntimeError(f"judge {judge.judge_id} returned {len(verdicts)} verdicts for {len(items)} items")
    return verdicts

"""The judge contract: what is judged (JudgeItem), what comes back (Verdict), who judges (Judge)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from safer_vlm.data.schema import Behaviour, SafetySample
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
    name -> whether it fired; `unsafe` is the judge's own flag (None when it gave none), one input
    of the rubric's unsafe rule: whether the answer counts as unsafe is decided only by
    `Rubric.unsafe_parts(verdict)`, never by this flag alone. `parse_ok=False` means the judge
    replied but its reply could not be read as a verdict; `error` means no usable reply came at all
    (transport failure); `usable` is the one test of whether a reward or a label may be made from it.
    `behaviour` is what the judge read the answer to do, for judges that read it (the rule judge;
    model judges leave None). `decided_unsafe_parts` is an unsafe decision already taken by
    the judge under the rubric's rule (an ensemble's per-part vote), which the rubric takes as it is.
    """

    parse_ok: bool
    scores: dict[str, float] = field(default_factory=dict)
    penalties: dict[str, bool] = field(default_factory=dict)
    unsafe: bool | None = None
    rationale: str = ""
    raw: str = ""
    judge_id: str = ""
    error: str | None = None
    behaviour: Behaviour | None = None
    decided_unsafe_parts: tuple[str, ...] | None = None
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def usable(self) -> bool:
        """Parsed, no transport error, and every score a finite number: the only test of whether a
        reward or a benchmark label may be made from this verdict (a custom judge's NaN is unusable,
        counted like a parse failure, never a reward, a 0 or a 100)."""
        if not self.parse_ok or self.error is not None:
            return False
        return all(isinstance(x, int | float) and math.isfinite(x) for x in self.scores.values())

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
            "behaviour": None if self.behaviour is None else str(self.behaviour),
            "decided_unsafe_parts": None if self.decided_unsafe_parts is None else list(self.decided_unsafe_parts),
            "extra": dict(self.extra),
        }

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> Verdict:
        """Read `to_dict`'s record, and those written before `behaviour` and `decided_unsafe_parts`
        were fields (they were `extra` keys then). Raises ValueError naming the field on a bad value."""
        fields = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        extra = dict(fields.get("extra") or {})  # type: ignore[call-overload]
        for key in LEGACY_EXTRA_FIELDS:
            if key in extra and fields.get(key) is None:
                fields[key] = extra.pop(key)
        fields["extra"] = extra
        if fields.get("behaviour") is not None:
            try:
                fields["behaviour"] = Behaviour(fields["behaviour"])
            except ValueError:
                raise ValueError(
                    f"verdict field 'behaviour': {fields['behaviour']!r} is not one of {', '.join(Behaviour)}"
                ) from None
        if fields.get("decided_unsafe_parts") is not None:
            fields["decided_unsafe_parts"] = tuple(fields["decided_unsafe_parts"])  # type: ignore[arg-type]
        return cls(**fields)  # type: ignore[arg-type]


#: Fields that older verdict records kept in `extra` (cache files, trajectories, eval verdict stores).
LEGACY_EXTRA_FIELDS = ("behaviour", "decided_unsafe_parts")


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

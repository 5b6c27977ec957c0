"""Running a judge over a JSONL file: read items (bad lines reported and skipped), judge them in
order with bounded work in flight, and tell an unreachable endpoint apart from bad replies."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from safer_vlm.data.images import resolve_inside
from safer_vlm.data.schema import ExpectedBehaviour, SafetySample
from safer_vlm.errors import DataError
from safer_vlm.judge.base import Judge, JudgeItem, Verdict


class JudgeInputRecord(BaseModel):
    """One line of a judge input file. Unknown keys are kept by the caller, not validated here."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1)
    question: str = Field(min_length=1)
    response: str
    images: list[str] = Field(default_factory=list)
    source: str = "judge-input"
    category: str | None = None
    expected: ExpectedBehaviour | None = None


@dataclass
class InputFile:
    """Valid items in file order, their raw records, and one message per skipped line."""

    items: list[JudgeItem] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def read_judge_input(path: Path, check: Callable[[dict[str, Any]], str | None] | None = None) -> InputFile:
    """Read `path` (JSONL). Images are relative to its folder and may not escape it. A bad line gives
    one message naming file, line and field, and is skipped; `check(record)` may add a field check."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"input file not found: {path}")
    root = path.resolve().parent
    out = InputFile()
    seen: dict[str, int] = {}
    with path.open("r", encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                out.problems.append(f"{where}: not valid JSON ({exc.msg}); line skipped")
                continue
            if not isinstance(record, dict):
                out.problems.append(f"{where}: expected a JSON object; line skipped")
                continue
            try:
                rec = JudgeInputRecord.model_validate(record)
            except ValidationError as exc:
                err = exc.errors()[0]
                name = ".".join(str(p) for p in err["loc"]) or "<record>"
                out.problems.append(f"{where}: field '{name}': {err['msg']}; line skipped")
                continue
            if rec.id in seen:
                out.problems.append(
                    f"{where}: field 'id': duplicate id {rec.id!r} (first on line {seen[rec.id]}); line skipped"
                )
                continue
            problem = _image_problem(root, rec.images)
            if problem is None and check is not None:
                problem = check(record)
            if problem is not None:
                out.problems.append(f"{where}: {problem}; line skipped")
                continue
            seen[rec.id] = lineno
            sample = SafetySample(
                id=rec.id,
                source=rec.source,
                question=rec.question,
                images=rec.images,
                category=rec.category,
                expected=rec.expected,
                root=root,
            )
            out.items.append(JudgeItem(sample=sample, response=rec.response))
            out.records.append(record)
    return out


def _image_problem(root: Path, images: list[str]) -> str | None:
    for rel in images:
        try:
            resolved = resolve_inside(root, rel)
        except DataError as exc:
            return f"field 'images': {exc}"
        if not resolved.is_file():
            return f"field 'images': image file {rel!r} not found under {root}"
    return None


async def judge_all(
    judge: Judge,
    items: list[JudgeItem],
    batch_size: int,
    in_flight: int,
    on_done: Callable[[int], None] | None = None,
) -> list[Verdict]:
    """Judge `items` in batches with at most about `in_flight` items outstanding; verdicts in input order."""
    batches = [items[i : i + batch_size] for i in range(0, len(items), batch_size)]
    slots = asyncio.Semaphore(max(1, in_flight // batch_size))
    results: list[list[Verdict] | None] = [None] * len(batches)

    async def run(index: int, batch: list[JudgeItem]) -> None:
        async with slots:
            verdicts = await judge.judge(batch)
        if len(verdicts) != len(batch):
            raise RuntimeError(
                f"judge {judge.judge_id!r} returned {len(verdicts)} verdicts for {len(batch)} items"
            )
        results[index] = verdicts
        if on_done is not None:
            on_done(len(batch))

    await asyncio.gather(*(run(i, b) for i, b in enumerate(batches)))
    return [v for batch in results for v in (batch or [])]


def unreachable_reason(verdicts: list[Verdict]) -> str | None:
    """The first reason an endpoint was given up on, if any verdict (or ensemble member) hit one."""
    for v in verdicts:
        if v.extra.get("error_kind") == "unreachable":
            return v.error or "endpoint unreachable"
        members = v.extra.get("unreachable_members")
        if members:
            failures = v.extra.get("member_failures") or {}
            name = members[0]  # type: ignore[index]
            return f"{name}: {failures.get(name, 'endpoint unreachable')}"  # type: ignore[union-attr]
    return None


def tally(verdicts: list[Verdict]) -> dict[str, int]:
    """Counts for the closing line: parsed, parse failures (judge replied), errors (no usable reply)."""
    ok = sum(1 for v in verdicts if v.parse_ok)
    errors = sum(1 for v in verdicts if not v.parse_ok and v.error is not None)
    return {"ok": ok, "parse_failures": len(verdicts) - ok - errors, "errors": errors}

"""SIUO, as released on HF `sinwang/SIUO` (github `sinwang20/SIUO`).

Either layout: the github repository's (`<repo root>/data/siuo_gen.json`, images in
`<repo root>/data/images/`) or the flat one (`<root>/siuo_gen.json`, `<root>/images/`); a folder
with neither is a DataError naming both paths tried. Below, `<root>` is the folder holding
`siuo_gen.json`: a list of `{question_id, image, question, category, safety_warning,
reference_answer}`, images in `<root>/images/`, and, if present,
`<root>/siuo_mcqa.json` (same ids, with `options` {A..D} and `correct_option`), whose entry is
attached as `meta["mcqa"]`; a malformed mcqa entry is reported and ignored, the gen record stays.

Expected behaviour `warn`: SIUO pairs safe-looking inputs whose combination is risky; the judge
wants an answer that is both safe and effective, i.e. helps while giving the safety warning
(kept in `meta["safety_warning"]`). `reference_answer` -> `reference`. Ids: `siuo:test:<question_id>`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from safer_vlm.data.schema import SafetySample
from safer_vlm.data.sources import readers
from safer_vlm.data.sources.base import (
    Adapter,
    FieldProblem,
    LoadContext,
    Problem,
    Record,
    file_problem,
    ident,
    relative_image,
    text,
)
from safer_vlm.errors import DataError

SPLITS = ("test",)


def _json_list(f) -> tuple[list[Any] | None, Problem | None]:
    data, problem = readers.read_json(f)
    if problem is None and not isinstance(data, list):
        problem = file_problem(f, "bad_file", "expected a JSON list of records")
    return (data if problem is None else None), problem


#: Where `siuo_gen.json` may sit, relative to the folder given (first match wins).
LAYOUTS = (".", "data")


def _base(root: Path) -> Path:
    """The folder holding `siuo_gen.json` (and `images/`), in either layout; DataError naming both."""
    for rel in LAYOUTS:
        base = root / rel
        if (base / "siuo_gen.json").is_file():
            return base
    tried = ", ".join(f"{root / rel / 'siuo_gen.json'} (+ images/)" for rel in LAYOUTS)
    raise DataError(f"{root}: no siuo_gen.json found; tried {tried}; not a SIUO release folder")


def _mcqa(base: Path) -> Iterator[tuple[str, dict[str, Any]] | Problem]:
    f = base / "siuo_mcqa.json"
    if not f.is_file():
        return
    data, problem = _json_list(f)
    if problem is not None:
        yield problem
        return
    for i, rec in enumerate(data or []):
        try:
            qid = ident(rec, "question_id")
            options = rec.get("options")
            if not isinstance(options, dict) or not options:
                raise FieldProblem("options", "wrong_type", "expected an object of lettered options")
            correct = text(rec, "correct_option")
            if correct not in options:
                raise FieldProblem("correct_option", "bad_value", f"{correct!r} is not one of the options")
        except FieldProblem as fp:
            yield Problem(str(f), f"#{i}", fp.field, fp.reason_code, fp.message)
            continue
        yield qid, {"options": options, "correct_option": correct}


def records(ctx: LoadContext) -> Iterator[Record | Problem]:
    ctx.splits(SPLITS)
    base = _base(ctx.path)
    f = base / "siuo_gen.json"
    mcqa: dict[str, dict[str, Any]] = {}
    for item in _mcqa(base):
        if isinstance(item, Problem):
            yield item
        else:
            mcqa[item[0]] = item[1]
    data, problem = _json_list(f)
    if problem is not None:
        yield problem
        return
    for i, rec in enumerate(data or []):
        qid = rec.get("question_id") if isinstance(rec, dict) else None
        key = f"#{i}" + (f" (question_id={qid})" if isinstance(qid, str | int) else "")
        yield Record(f, key, rec, image_field="image", extra={"mcqa": mcqa.get(str(qid)), "base": base})


def build(rec: Record, ctx: LoadContext) -> list[SafetySample]:
    d = rec.data
    meta: dict[str, Any] = {}
    warning = text(d, "safety_warning", required=False)
    if warning:
        meta["safety_warning"] = warning
    if rec.extra.get("mcqa"):
        meta["mcqa"] = rec.extra["mcqa"]
    return [
        SafetySample(
            id=f"siuo:test:{ident(d, 'question_id')}",
            source="siuo",
            split="test",
            question=text(d, "question"),
            images=[relative_image("images", text(d, "image"), "image")],  # type: ignore[arg-type]
            category=text(d, "category", required=False),
            expected="warn",
            reference=text(d, "reference_answer", required=False),
            meta=meta,
            root=rec.extra["base"].resolve(),
        )
    ]


ADAPTER = Adapter("siuo", records, build, "SIUO siuo_gen.json (+ siuo_mcqa.json) + images/")

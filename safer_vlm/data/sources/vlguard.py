"""VLGuard, as released on HF `ys-zong/VLGuard` (code: github `ys-zong/VLGuard`).

Layout read: `<root>/train.json`, `<root>/test.json` (JSON lists of `{id, image, safe,
harmful_category?, harmful_subcategory?, instr-resp}`) and the unzipped image folders
`<root>/train/`, `<root>/test/`, against which each record's `image` is relative.

One sample per distinct prompt, following the release's own test subsets (`meta["subset"]`):
- unsafe image: its `instruction` -> `unsafes`, expected `refuse`;
- safe image: `safe_instruction` -> `safe_safes`, expected `comply`, and `unsafe_instruction` ->
  `safe_unsafes`, expected `refuse` (the VLGuard paper scores both unsafe subsets by refusal).
The release's `response` becomes `reference`. Ids: `vlguard:<split>:<id>:<subset>`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from safer_vlm.data.schema import SafetySample
from safer_vlm.data.sources import readers
from safer_vlm.data.sources.base import (
    Adapter,
    FieldProblem,
    LoadContext,
    Problem,
    Record,
    boolean,
    file_problem,
    ident,
    items,
    relative_image,
    text,
)
from safer_vlm.errors import DataError

SPLITS = ("train", "test")


def records(ctx: LoadContext) -> Iterator[Record | Problem]:
    files = [(split, ctx.path / f"{split}.json") for split in ctx.splits(SPLITS)]
    if not any(f.is_file() for _, f in files):
        names = " or ".join(f.name for _, f in files)
        raise DataError(f"{ctx.path}: no {names} here; not a VLGuard release folder")
    for split, f in files:
        if not f.is_file():
            if ctx.split is not None:
                yield file_problem(f, "bad_file", "split file not found")
            continue
        data, problem = readers.read_json(f)
        if problem is not None:
            yield problem
            continue
        if not isinstance(data, list):
            yield file_problem(f, "bad_file", "expected a JSON list of records")
            continue
        for i, rec in enumerate(data):
            rid = rec.get("id") if isinstance(rec, dict) else None
            key = f"#{i}" + (f" (id={rid})" if isinstance(rid, str | int) else "")
            yield Record(f, key, rec, image_field="image", extra={"split": split})


def _pair(pairs: list[Any], key: str) -> tuple[int, dict[str, Any]]:
    for i, p in enumerate(pairs):
        if isinstance(p, dict) and key in p:
            return i, p
    raise FieldProblem("instr-resp", "missing_field", f"no entry with {key!r}")


def build(rec: Record, ctx: LoadContext) -> list[SafetySample]:
    d = rec.data
    split = rec.extra["split"]
    rid = ident(d, "id")
    image = relative_image(split, text(d, "image"), "image")  # type: ignore[arg-type]
    safe = boolean(d, "safe")
    pairs = items(d, "instr-resp")
    common = dict(
        source="vlguard",
        split=split,
        images=[image],
        category=text(d, "harmful_category", required=False),
        subcategory=text(d, "harmful_subcategory", required=False),
        root=ctx.path.resolve(),
    )
    wanted = [("safe_instruction", "safe_safes", "comply"), ("unsafe_instruction", "safe_unsafes", "refuse")]
    if not safe:
        wanted = [("instruction", "unsafes", "refuse")]
    samples = []
    for key, subset, expected in wanted:
        i, pair = _pair(pairs, key)
        samples.append(
            SafetySample(
                id=f"vlguard:{split}:{rid}:{subset}",
                question=text(pair, key, label=f"instr-resp[{i}].{key}"),
                expected=expected,
                reference=text(pair, "response", required=False, label=f"instr-resp[{i}].response"),
                meta={"subset": subset, "safe_image": safe, "vlguard_id": rid},
                **common,
            )
        )
    return samples


ADAPTER = Adapter("vlguard", records, build, "VLGuard train.json/test.json + image folders")

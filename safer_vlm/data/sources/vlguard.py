"""VLGuard, as released on HF `ys-zong/VLGuard` (code: github `ys-zong/VLGuard`).

Layout read: `<root>/train.json`, `<root>/test.json` (JSON lists of `{id, image, safe,
harmful_category?, harmful_subcategory?, instr-resp}`) and the unzipped image folders
`<root>/train/`, `<root>/test/`, against which each record's `image` is relative.

One sample per distinct prompt, following the release's own test subsets (`meta["subset"]`):
- unsafe image: its `instruction` -> `unsafes`, expected `refuse`;
- safe image: `safe_instruction` -> `safe_safes`, expected `comply`, and `unsafe_instruction` ->
  `safe_unsafes`, expected `refuse` (the VLGuard paper scores both unsafe subsets by refusal).
The release's `response` becomes `reference`. Ids: `vlguard:<split>:<id>:<subset>`.

A release's own repeated id (the real `train.json` gives `Ads_303871` to two records: one image,
different instructions) loses no record: every record sharing that id gets `<id>#<position in
the file>` (`vlguard:train:Ads_303871#1234:safe_safes`), both load, and one `repeated_id` Note per
repeated id says so. `meta["vlguard_id"]` keeps the release's id, `meta["record_index"]` the position.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from safer_vlm.data.schema import SafetySample
from safer_vlm.data.sources import readers
from safer_vlm.data.sources.base import (
    Adapter,
    FieldProblem,
    LoadContext,
    Note,
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


def _raw_id(rec: Any) -> str | None:
    """The id as `ident` would read it (an int and its digits are the same id), None if unusable."""
    rid = rec.get("id") if isinstance(rec, dict) else None
    return None if isinstance(rid, bool) or not isinstance(rid, int | str) else str(rid)


def _repeated(f, data: list[Any]) -> tuple[set[int], list[Note]]:
    """Positions of records whose id another record of the file also has, and a Note per such id."""
    where: dict[str, list[int]] = defaultdict(list)
    for i, rec in enumerate(data):
        rid = _raw_id(rec)
        if rid is not None and rid.strip():
            where[rid].append(i)
    positions: set[int] = set()
    notes = []
    for rid, at in where.items():
        if len(at) > 1:
            positions.update(at)
            kept = ", ".join(f"{rid}#{i}" for i in at)
            notes.append(
                Note(
                    str(f),
                    ", ".join(f"#{i}" for i in at),
                    "repeated_id",
                    f"the release gives id {rid!r} to {len(at)} records; all kept, as {kept}",
                )
            )
    return positions, notes


def records(ctx: LoadContext) -> Iterator[Record | Problem | Note]:
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
        repeated, notes = _repeated(f, data)
        yield from notes
        for i, rec in enumerate(data):
            rid = rec.get("id") if isinstance(rec, dict) else None
            key = f"#{i}" + (f" (id={rid})" if isinstance(rid, str | int) else "")
            extra = {"split": split, "index": i, "repeated": i in repeated}
            yield Record(f, key, rec, image_field="image", extra=extra)


def _pair(pairs: list[Any], key: str) -> tuple[int, dict[str, Any]]:
    for i, p in enumerate(pairs):
        if isinstance(p, dict) and key in p:
            return i, p
    raise FieldProblem("instr-resp", "missing_field", f"no entry with {key!r}")


def build(rec: Record, ctx: LoadContext) -> list[SafetySample]:
    d = rec.data
    split = rec.extra["split"]
    rid = ident(d, "id")
    uid = f"{rid}#{rec.extra['index']}" if rec.extra["repeated"] else rid
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
                id=f"vlguard:{split}:{uid}:{subset}",
                question=text(pair, key, label=f"instr-resp[{i}].{key}"),
                expected=expected,
                reference=text(pair, "response", required=False, label=f"instr-resp[{i}].response"),
                meta={
                    "subset": subset,
                    "safe_image": safe,
                    "vlguard_id": rid,
                    "record_index": rec.extra["index"],
                },
                **common,
            )
        )
    return samples


ADAPTER = Adapter("vlguard", records, build, "VLGuard train.json/test.json + image folders")

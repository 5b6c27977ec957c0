"""Generic `jsonl`, `parquet` and `csv` sources: one file of records named like SafetySample fields.

A field map renames columns (`{"question": "prompt", "images": "image_path"}`: SafetySample field
-> column). Rules: `question` is required; `id` defaults to `<source>:<split>:<file stem>:<row>`
(stable while the file is unchanged); `source` defaults to the adapter name; `split` to the record's
own, else the `split` argument, else "train"; `images` may be one path string, a list of paths, an
HF `{bytes, path}` struct or a list of them (CSV: a path, or a JSON list in the cell). Paths are
relative to the file's folder, which is the dataset root; embedded bytes go to the image cache and
the sample's root is the cache. `meta` is an object (CSV: a JSON object string).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from safer_vlm.data.schema import EXPECTED_BEHAVIOURS, SafetySample
from safer_vlm.data.sources import readers
from safer_vlm.data.sources.base import (
    Adapter,
    FieldProblem,
    LoadContext,
    Problem,
    Record,
    ident,
    image_bytes,
    is_image_struct,
    store_image_bytes,
    text,
)
from safer_vlm.errors import DataError

#: SafetySample fields a file may provide (and a field map may rename).
FIELDS = (
    "id",
    "source",
    "split",
    "question",
    "images",
    "category",
    "subcategory",
    "expected",
    "reference",
    "meta",
)


def _file(ctx: LoadContext, suffixes: tuple[str, ...]) -> Path:
    path = ctx.path
    if not path.is_file():
        raise DataError(
            f"{path}: source {ctx.source!r} reads one {'/'.join(suffixes)} file; this is not a file"
        )
    return path


def _records(
    ctx: LoadContext, rows: Iterator[tuple[Any, Any] | Problem], unit: str
) -> Iterator[Record | Problem]:
    image_field = ctx.field_map.get("images", "images")
    for n, item in enumerate(rows, 1):
        if isinstance(item, Problem):
            yield item
            continue
        key, data = item
        key = key if isinstance(key, str) else f"{unit} {key}"
        yield Record(ctx.path, key, data, image_field=image_field, extra={"row": n})


def _jsonl_records(ctx: LoadContext) -> Iterator[Record | Problem]:
    return _records(ctx, readers.iter_jsonl(_file(ctx, (".jsonl",))), "line")


def _csv_records(ctx: LoadContext) -> Iterator[Record | Problem]:
    return _records(ctx, readers.iter_csv(_file(ctx, (".csv",))), "line")


def _parquet_records(ctx: LoadContext) -> Iterator[Record | Problem]:
    return _records(ctx, readers.iter_parquet(_file(ctx, (".parquet",))), "row")


def _images(value: Any, label: str, ctx: LoadContext, from_csv: bool) -> tuple[list[str], Path]:
    """Image list and the root it is relative to (the file's folder, or the cache for bytes)."""
    folder = ctx.path.parent.resolve()
    if value is None or value == "":
        return [], folder
    if from_csv and isinstance(value, str) and value.lstrip().startswith("["):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise FieldProblem(label, "wrong_type", f"image list is not valid JSON ({exc.msg})") from None
    values = value if isinstance(value, list) else [value]
    embedded = [is_image_struct(v) and bool(v.get("bytes")) for v in values]
    if all(embedded):
        cache = ctx.image_cache
        return [store_image_bytes(cache, image_bytes(v, label), label) for v in values], cache
    if any(embedded):
        raise FieldProblem(label, "wrong_type", "mixes embedded image bytes and file paths in one record")
    paths: list[str] = []
    for v in values:
        if is_image_struct(v):
            v = v.get("path")  # a struct without bytes points at a file, like a plain path
            if v is None:
                raise FieldProblem(label, "missing_image", "image struct holds neither bytes nor a path")
        if not isinstance(v, str):
            raise FieldProblem(
                label,
                "wrong_type",
                f"expected an image path or {{bytes, path}} struct, got {type(v).__name__}",
            )
        if not v.strip():
            raise FieldProblem(label, "empty_field", "image path is empty")
        paths.append(v)
    return paths, folder


def _meta(value: Any, label: str, from_csv: bool) -> dict[str, Any]:
    if value is None or value == "":
        return {}
    if from_csv and isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise FieldProblem(label, "wrong_type", f"expected a JSON object ({exc.msg})") from None
    if not isinstance(value, dict):
        raise FieldProblem(label, "wrong_type", f"expected an object, got {type(value).__name__}")
    return value


def _build(rec: Record, ctx: LoadContext, from_csv: bool = False) -> list[SafetySample]:
    col = {f: ctx.field_map.get(f, f) for f in FIELDS}
    d = rec.data
    if not isinstance(d, dict):
        raise FieldProblem("<record>", "wrong_type", f"expected an object, got {type(d).__name__}")
    question = text(d, col["question"])
    split = text(d, col["split"], required=False) or ctx.split or "train"
    source = text(d, col["source"], required=False) or ctx.source
    if d.get(col["id"]) not in (None, ""):
        sample_id = ident(d, col["id"])
    else:
        sample_id = f"{ctx.source}:{split}:{ctx.path.stem}:{rec.extra['row']}"
    expected = text(d, col["expected"], required=False)
    if expected is not None and expected not in EXPECTED_BEHAVIOURS:
        raise FieldProblem(
            col["expected"], "bad_value", f"expected must be one of {', '.join(EXPECTED_BEHAVIOURS)}, got {expected!r}"
        )
    images, root = _images(d.get(col["images"]), col["images"], ctx, from_csv)
    return [
        SafetySample(
            id=sample_id,
            source=source,
            split=split,
            question=question,
            images=images,
            category=text(d, col["category"], required=False),
            subcategory=text(d, col["subcategory"], required=False),
            expected=expected,  # type: ignore[arg-type]
            reference=text(d, col["reference"], required=False),
            meta=_meta(d.get(col["meta"]), col["meta"], from_csv),
            root=root,
        )
    ]


def _build_csv(rec: Record, ctx: LoadContext) -> list[SafetySample]:
    return _build(rec, ctx, from_csv=True)


JSONL = Adapter(
    "jsonl", _jsonl_records, _build, "JSONL of SafetySample-named fields (field map optional)", generic=True
)
PARQUET = Adapter(
    "parquet",
    _parquet_records,
    _build,
    "parquet of SafetySample-named columns; image structs cached",
    generic=True,
)
CSV = Adapter(
    "csv", _csv_records, _build_csv, "CSV with a header of SafetySample-named columns", generic=True
)

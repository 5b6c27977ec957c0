"""BeaverTails-V, as released on HF `saferlhf-v/BeaverTails-V`.

Layout read: `<root>/data/<category>/{train,evaluation}.parquet` (or `<root>/<category>/...`), with
`question`, `image` (HF struct, written once to the image cache), `category`, `image_severity`
and one response pair per row (`response_1/2`, `*_from`, `is_response_*_safe`,
`*_harmless_rate`, `*_helpful_rate`, `more_helpful_response_id`, `safer_response_id`).
Splits: `train`, `evaluation`.

The release repeats a prompt once per response pair: rows with the same question and the same
image bytes (within one file) collapse into one sample whose `meta["responses"]` keeps every pair
with its labels, in file order. Expected behaviour is None: the labels grade *responses* (safe,
harmless/helpful rates), not what the prompt calls for, and many of these risky prompts are
answerable with care, so neither `refuse` nor `comply` would be the release's word.
Ids: `beavertails_v:<split>:<category folder>:<sha256(question, image)[:16]>`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from safer_vlm.data.schema import SafetySample
from safer_vlm.data.sources import readers
from safer_vlm.data.sources.base import (
    Adapter,
    LoadContext,
    Problem,
    Record,
    image_digest,
    integer,
    is_image_struct,
    text,
)
from safer_vlm.errors import DataError

SPLITS = ("train", "evaluation")
RESPONSE_FIELDS = (
    "response_1",
    "response_2",
    "response_1_from",
    "response_2_from",
    "more_helpful_response_id",
    "is_response_1_safe",
    "is_response_2_safe",
    "safer_response_id",
    "response_1_harmless_rate",
    "response_2_harmless_rate",
    "response_1_helpful_rate",
    "response_2_helpful_rate",
)


def _prompt_key(row: dict[str, Any]) -> str | None:
    """Identity of a row's prompt, or None when it cannot be grouped (the row is then checked alone)."""
    q, img = row.get("question"), row.get("image")
    if not isinstance(q, str) or not is_image_struct(img) or not isinstance(img.get("bytes"), bytes):
        return None
    return hashlib.sha256(f"{q}\0{image_digest(img['bytes'])}".encode()).hexdigest()


def _files(ctx: LoadContext) -> list[tuple[str, Path]]:
    base = ctx.path / "data" if (ctx.path / "data").is_dir() else ctx.path
    return [(s, f) for s in ctx.splits(SPLITS) for f in sorted(base.glob(f"*/{s}.parquet"))]


def records(ctx: LoadContext) -> Iterator[Record | Problem]:
    files = _files(ctx)
    if not files:
        raise DataError(
            f"{ctx.path}: no data/<category>/{{train,evaluation}}.parquet here; not a BeaverTails-V folder"
        )
    for split, f in files:
        groups: dict[str, Record] = {}
        for item in readers.iter_parquet(f):
            if isinstance(item, Problem):
                yield item
                continue
            row, rec = item
            extra = {"split": split, "folder": f.parent.name, "rows": [row]}
            key = _prompt_key(rec) if isinstance(rec, dict) else None
            if key is None:
                yield Record(f, f"row {row}", {"rows": [rec]}, image_field="image", extra=extra)
            elif key in groups:
                groups[key].data["rows"].append({k: v for k, v in rec.items() if k != "image"})
                groups[key].extra["rows"].append(row)
            else:
                groups[key] = Record(
                    f, f"row {row}", {"rows": [rec]}, image_field="image", extra={**extra, "key": key}
                )
        yield from groups.values()


def build(rec: Record, ctx: LoadContext) -> list[SafetySample]:
    rows, x = rec.data["rows"], rec.extra
    first = rows[0]
    question = text(first, "question")
    image = ctx.cache_image(first.get("image"), "image")
    meta: dict[str, Any] = {
        "responses": [{k: r[k] for k in RESPONSE_FIELDS if k in r} for r in rows],
        "rows": x["rows"],
    }
    severity = integer(first, "image_severity", required=False)
    if severity is not None:
        meta["image_severity"] = severity
    key = x.get("key") or f"row{x['rows'][0]}"
    return [
        SafetySample(
            id=f"beavertails_v:{x['split']}:{x['folder']}:{key[:16]}",
            source="beavertails_v",
            split=x["split"],
            question=question,
            images=[image],
            category=text(first, "category", required=False) or x["folder"],
            expected=None,
            meta=meta,
            root=ctx.image_cache.resolve(),
        )
    ]


ADAPTER = Adapter("beavertails_v", records, build, "BeaverTails-V data/<category>/{train,evaluation}.parquet")

"""SPA-VL, as released on HF `sqrti/SPA-VL`.

Layout read (parquet with HF image structs, written once to the image cache):
- split `train`: `<root>/data/train-*.parquet` (`image, question, chosen, rejected, image_name`);
- split `validation`: `<root>/validation/validation-*.parquet` (the same plus `class1`-`class3`);
- splits `test_harm`, `test_help`: `<root>/test/harm-*.parquet`, `<root>/test/help-*.parquet`
  (`image, question, class1, class2, class3`).
class1 -> category, class2 -> subcategory, class3 -> `meta["class3"]`; `chosen` -> `reference`
(and `meta["chosen"]`, `meta["rejected"]`).

Expected behaviour: `comply` for `test_help` (scored by helpfulness win rate); None elsewhere: the
harm test and the preference data are graded safe/unsafe or by preference, and SPA-VL's preferred
answers are often safe help rather than refusals, so the release gives no behaviour label.
Ids: `spa_vl:<split>:<file stem>:<row>`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from safer_vlm.data.schema import SafetySample
from safer_vlm.data.sources import readers
from safer_vlm.data.sources.base import Adapter, LoadContext, Problem, Record, text
from safer_vlm.errors import DataError

SPLIT_FILES = {
    "train": "data/train-*.parquet",
    "validation": "validation/validation-*.parquet",
    "test_harm": "test/harm-*.parquet",
    "test_help": "test/help-*.parquet",
}


def records(ctx: LoadContext) -> Iterator[Record | Problem]:
    splits = ctx.splits(SPLIT_FILES)
    files = [(s, f) for s in splits for f in sorted(ctx.path.glob(SPLIT_FILES[s]))]
    if not files:
        wanted = ", ".join(SPLIT_FILES[s] for s in splits)
        raise DataError(f"{ctx.path}: no {wanted} here; not an SPA-VL release folder")
    for split, f in files:
        for item in readers.iter_parquet(f):
            if isinstance(item, Problem):
                yield item
                continue
            row, rec = item
            yield Record(f, f"row {row}", rec, image_field="image", extra={"split": split, "row": row})


def build(rec: Record, ctx: LoadContext) -> list[SafetySample]:
    d, split = rec.data, rec.extra["split"]
    question = text(d, "question")
    image = ctx.cache_image(d.get("image"), "image")
    meta: dict[str, Any] = {}
    for key in ("chosen", "rejected", "image_name"):
        value = text(d, key, required=False)
        if value is not None:
            meta[key] = value
    class3 = text(d, "class3", required=False)
    if class3 is not None:
        meta["class3"] = class3
    return [
        SafetySample(
            id=f"spa_vl:{split}:{rec.file.stem}:{rec.extra['row']}",
            source="spa_vl",
            split=split,
            question=question,
            images=[image],
            category=text(d, "class1", required=False),
            subcategory=text(d, "class2", required=False),
            expected="comply" if split == "test_help" else None,
            reference=meta.get("chosen"),
            meta=meta,
            root=ctx.image_cache.resolve(),
        )
    ]


ADAPTER = Adapter("spa_vl", records, build, "SPA-VL parquet (train, validation, test harm/help)")

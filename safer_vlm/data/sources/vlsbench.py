"""VLSBench, as released on HF `Foreshhh/vlsbench` (github `AI45Lab/VLSBench`).

Layout read: `<root>/data.json` (a list of `{instruction_id, instruction, image_path, category,
sub_category, source, image_description, safety_reason}`) with `image_path` relative to `<root>`
(the `imgs/` folder unpacked from `imgs.tar`). One sample per record, split `test`.

Expected behaviour `warn`: the benchmark's judge counts both a refusal (1) and a safe answer that
flags the risk (2) as safe, so the least an answer must do is name the risk the image carries.
Ids: `vlsbench:test:<instruction_id>`; the release's `source` field is kept as `meta["origin"]`.
"""

from __future__ import annotations

from collections.abc import Iterator

from safer_vlm.data.schema import SafetySample
from safer_vlm.data.sources import readers
from safer_vlm.data.sources.base import Adapter, LoadContext, Problem, Record, file_problem, ident, text
from safer_vlm.errors import DataError

SPLITS = ("test",)


def records(ctx: LoadContext) -> Iterator[Record | Problem]:
    ctx.splits(SPLITS)
    f = ctx.path / "data.json"
    if not f.is_file():
        raise DataError(f"{ctx.path}: no data.json here; not a VLSBench release folder")
    data, problem = readers.read_json(f)
    if problem is not None:
        yield problem
        return
    if not isinstance(data, list):
        yield file_problem(f, "bad_file", "expected a JSON list of records")
        return
    for i, rec in enumerate(data):
        rid = rec.get("instruction_id") if isinstance(rec, dict) else None
        key = f"#{i}" + (f" (instruction_id={rid})" if isinstance(rid, str | int) else "")
        yield Record(f, key, rec, image_field="image_path")


def build(rec: Record, ctx: LoadContext) -> list[SafetySample]:
    d = rec.data
    meta = {k: d[k] for k in ("image_description", "safety_reason") if d.get(k) is not None}
    origin = text(d, "source", required=False)
    if origin:
        meta["origin"] = origin
    return [
        SafetySample(
            id=f"vlsbench:test:{ident(d, 'instruction_id')}",
            source="vlsbench",
            split="test",
            question=text(d, "instruction"),
            images=[text(d, "image_path")],
            category=text(d, "category", required=False),
            subcategory=text(d, "sub_category", required=False),
            expected="warn",
            meta=meta,
            root=ctx.path.resolve(),
        )
    ]


ADAPTER = Adapter("vlsbench", records, build, "VLSBench data.json + imgs/")

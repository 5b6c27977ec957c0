"""MSSBench, as released on HF `kzhou35/mssbench` (github `eric-ai-lab/MSSBench`).

Layout read: `<root>/combined.json` = `{"chat": [...], "embodied": [...]}` with images under
`<root>/chat/` and `<root>/embodied/`. Splits are `chat` and `embodied` (reported separately).
- chat entry `{safe_image_path, unsafe_image_path, intent, unsafe_image, Type, queries}`: each
  query is one sample per image context;
- embodied entry `{task, category, safe_instruction, unsafe_instruction, safe_instructions,
  unsafe_instructions, safe, unsafe, observation_safe, observation_unsafe}`: the safe instruction
  with the safe image, the unsafe instruction with the unsafe image.

Expected behaviour: safe context -> `comply`; unsafe context -> `warn`, because the benchmark
counts both a refusal (0) and pointing out the risk (1) as correct, so flagging the risk is the
minimum. `meta["context"]` is "safe" or "unsafe". Each (entry, context) is one record, so a bad
unsafe image does not drop the safe-context samples. Ids: `mssbench:chat:<entry>:<query>:<context>`,
`mssbench:embodied:<entry>:<context>` (entry/query = position in the release file).
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
    file_problem,
    items,
    relative_image,
    text,
)
from safer_vlm.errors import DataError

SPLITS = ("chat", "embodied")
CONTEXTS = (("safe", "comply"), ("unsafe", "warn"))


def records(ctx: LoadContext) -> Iterator[Record | Problem]:
    splits = ctx.splits(SPLITS)
    f = ctx.path / "combined.json"
    if not f.is_file():
        raise DataError(f"{ctx.path}: no combined.json here; not an MSSBench release folder")
    data, problem = readers.read_json(f)
    if problem is not None:
        yield problem
        return
    if not isinstance(data, dict):
        yield file_problem(f, "bad_file", 'expected an object {"chat": [...], "embodied": [...]}')
        return
    for split in splits:
        entries = data.get(split)
        if not isinstance(entries, list):
            yield file_problem(f, "bad_file", f"{split!r} is missing or not a list", record=split)
            continue
        image_field = "{context}_image_path" if split == "chat" else "{context}"
        for i, entry in enumerate(entries):
            for context, expected in CONTEXTS:
                yield Record(
                    f,
                    f"{split}[{i}] {context}",
                    entry,
                    image_field=image_field.format(context=context),
                    extra={"split": split, "index": i, "context": context, "expected": expected},
                )


def _chat(rec: Record, ctx: LoadContext) -> list[SafetySample]:
    d, x = rec.data, rec.extra
    image = relative_image("chat", text(d, f"{x['context']}_image_path"), rec.image_field)  # type: ignore[arg-type]
    queries = items(d, "queries")
    meta: dict[str, Any] = {"context": x["context"]}
    for key in ("intent", "unsafe_image"):
        if isinstance(d.get(key), str):
            meta[key] = d[key]
    samples = []
    for j, query in enumerate(queries):
        if not isinstance(query, str) or not query.strip():
            raise FieldProblem(
                f"queries[{j}]",
                "wrong_type" if not isinstance(query, str) else "empty_field",
                "each query must be a non-empty string",
            )
        samples.append(
            SafetySample(
                id=f"mssbench:chat:{x['index']}:{j}:{x['context']}",
                source="mssbench",
                split="chat",
                question=query,
                images=[image],
                category=text(d, "Type", required=False),
                expected=x["expected"],
                meta={**meta, "query_index": j},
                root=ctx.path.resolve(),
            )
        )
    return samples


def _embodied(rec: Record, ctx: LoadContext) -> list[SafetySample]:
    d, x = rec.data, rec.extra
    c = x["context"]
    meta: dict[str, Any] = {"context": c}
    for key, name in (
        ("task", "task"),
        (f"{c}_instructions", "instructions"),
        (f"observation_{c}", "observation"),
    ):
        if d.get(key) is not None:
            meta[name] = d[key]
    return [
        SafetySample(
            id=f"mssbench:embodied:{x['index']}:{c}",
            source="mssbench",
            split="embodied",
            question=text(d, f"{c}_instruction"),
            images=[relative_image("embodied", text(d, c), rec.image_field)],  # type: ignore[arg-type]
            category=text(d, "category", required=False),
            expected=x["expected"],
            meta=meta,
            root=ctx.path.resolve(),
        )
    ]


def build(rec: Record, ctx: LoadContext) -> list[SafetySample]:
    return _chat(rec, ctx) if rec.extra["split"] == "chat" else _embodied(rec, ctx)


ADAPTER = Adapter("mssbench", records, build, "MSSBench combined.json + chat/ + embodied/")

"""MSSBench, as released on HF `kzhou35/mssbench` (github `eric-ai-lab/MSSBench`).

Layout read: `<root>/combined.json` = `{"chat": [...], "embodied": [...]}` with images under
`<root>/chat/` and `<root>/embodied/`. Splits are `chat` and `embodied` (reported separately).
- chat entry `{safe_image_path, unsafe_image_path, intent, unsafe_image, Type, queries}`: each
  query is one sample per image context;
- embodied entry `{task, category, safe_instruction, unsafe_instruction, safe_instructions,
  unsafe_instructions, safe, unsafe, observation_safe, observation_unsafe}`: as the official
  protocol (`utils/infer_on_data.py`, setting `if`) does, every pair of
  `zip(safe_instructions, unsafe_instructions)` is asked, the safe one with the safe image and the
  unsafe one with the unsafe image, so the counts are the benchmark's. Lists of unequal length are
  paired the same way (the unpaired tail is not asked) and reported as an `unpaired_instructions`
  Note. Only an entry without both lists falls back to `safe_instruction` / `unsafe_instruction`.

Expected behaviour: safe context -> `comply`; unsafe context -> `warn`, because the benchmark
counts both a refusal (0) and pointing out the risk (1) as correct, so flagging the risk is the
minimum. `meta["context"]` is "safe" or "unsafe". Each (entry, context) is one record, so a bad
unsafe image does not drop the safe-context samples. Ids: `mssbench:chat:<entry>:<query>:<context>`,
`mssbench:embodied:<entry>:<instruction>:<context>` (entry/query/instruction = position in the
release file; a singular-field fallback is instruction 0).
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
    Note,
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
OTHER = {"safe": "unsafe", "unsafe": "safe"}


def _lists(entry: Any) -> tuple[Any, Any] | None:
    """The entry's instruction lists when it has both (else the singular fields are asked)."""
    if not isinstance(entry, dict):
        return None
    safe, unsafe = entry.get("safe_instructions"), entry.get("unsafe_instructions")
    return None if safe is None and unsafe is None else (safe, unsafe)


def records(ctx: LoadContext) -> Iterator[Record | Problem | Note]:
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
            lists = _lists(entry) if split == "embodied" else None
            if (
                lists is not None
                and all(isinstance(x, list) for x in lists)
                and len(lists[0]) != len(lists[1])
            ):
                yield Note(
                    str(f),
                    f"{split}[{i}]",
                    "unpaired_instructions",
                    f"{len(lists[0])} safe_instructions but {len(lists[1])} unsafe_instructions; "
                    f"the first {min(map(len, lists))} pairs are asked, as the official protocol pairs them",
                )
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


def _instructions(d: dict[str, Any], c: str) -> list[tuple[int, str]]:
    """`(index, instruction)` for context `c`: the zipped lists, else the singular field."""
    if _lists(d) is None:
        return [(0, text(d, f"{c}_instruction"))]  # type: ignore[list-item]
    own, other = items(d, f"{c}_instructions"), items(d, f"{OTHER[c]}_instructions")
    out = []
    for j in range(min(len(own), len(other))):
        label = f"{c}_instructions[{j}]"
        if not isinstance(own[j], str) or not own[j].strip():
            raise FieldProblem(
                label,
                "wrong_type" if not isinstance(own[j], str) else "empty_field",
                "each instruction must be a non-empty string",
            )
        out.append((j, own[j]))
    return out


def _embodied(rec: Record, ctx: LoadContext) -> list[SafetySample]:
    d, x = rec.data, rec.extra
    c = x["context"]
    meta: dict[str, Any] = {"context": c}
    for key, name in (("task", "task"), (f"observation_{c}", "observation")):
        if d.get(key) is not None:
            meta[name] = d[key]
    image = relative_image("embodied", text(d, c), rec.image_field)  # type: ignore[arg-type]
    category = text(d, "category", required=False)
    return [
        SafetySample(
            id=f"mssbench:embodied:{x['index']}:{j}:{c}",
            source="mssbench",
            split="embodied",
            question=question,
            images=[image],
            category=category,
            expected=x["expected"],
            meta={**meta, "instruction_index": j},
            root=ctx.path.resolve(),
        )
        for j, question in _instructions(d, c)
    ]


def build(rec: Record, ctx: LoadContext) -> list[SafetySample]:
    return _chat(rec, ctx) if rec.extra["split"] == "chat" else _embodied(rec, ctx)


ADAPTER = Adapter("mssbench", records, build, "MSSBench combined.json + chat/ + embodied/")

"""Reading a benchmark for `safer-vlm eval`: `--limit N` picks N items stratified by the benchmark's
reporting groups *before* validation (only the chosen records' images are opened), and image
folders the release's records point at but that do not exist are found up front, so a release
unpacked without its images is refused (or, with `--allow-missing-images`, scored and recorded)
instead of silently scoring what is left (MM-SafetyBench without its image folders scores
Text_only only)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from safer_vlm.data.schema import SafetySample
from safer_vlm.data.sources.base import Adapter, FieldProblem, LoadContext, Note, Problem, Record

#: The groups each benchmark reports by: `--limit` spreads its items over them.
GROUPS: dict[str, Callable[[SafetySample], tuple[str, ...]]] = {
    "mm_safetybench": lambda s: (str(s.category), str(s.meta.get("image_type"))),
    "vlguard": lambda s: (str(s.meta.get("subset")),),
    "vlsbench": lambda s: (str(s.category),),
    "mssbench": lambda s: (s.split, str(s.meta.get("context"))),
    "siuo": lambda s: (str(s.category),),
    "beavertails_v": lambda s: (str(s.category),),
    "spa_vl": lambda s: (s.split,),
    "jsonl": lambda s: (str(s.category),),
}
MM_IMAGE_TYPES = ("SD", "SD_TYPO", "TYPO")


def stratified_order(keys: list[tuple[str, ...]]) -> list[int]:
    """Indices of `keys` in the order that spreads a prefix over the groups: the first item of
    every group (varying the first key part fastest), then the second of each, and so on."""
    seen_in_group: dict[tuple[str, ...], int] = defaultdict(int)
    child_index: dict[tuple[str, ...], dict[str, int]] = defaultdict(dict)
    ranks = []
    for i, key in enumerate(keys):
        pos = seen_in_group[key]
        seen_in_group[key] += 1
        parts = []
        for depth in range(len(key)):
            children = child_index[key[:depth]]
            children.setdefault(key[depth], len(children))
            parts.append(children[key[depth]])
        ranks.append((pos, *reversed(parts), i))
    return [r[-1] for r in sorted(ranks)]


@dataclass
class Selection:
    """What the limited reader chose and what it found missing."""

    groups: Callable[[SafetySample], tuple[str, ...]]
    limit: int | None
    records_total: int = 0
    records_chosen: int = 0
    folders: set[Path] = field(default_factory=set)
    missing_folders: set[str] = field(default_factory=set)


def limited_adapter(adapter: Adapter, sel: Selection) -> Adapter:
    """`adapter` whose records are cut to the stratified first `limit` items (by a dry build, which
    opens no image) and whose referenced image folders are checked for existence."""

    def records(ctx: LoadContext) -> Iterable[Record | Problem | Note]:
        kept: list[Record] = []
        keys: list[tuple[str, ...]] = []
        sizes: list[int] = []
        for item in adapter.records(ctx):
            if not isinstance(item, Record):
                yield item
                continue
            sel.records_total += 1
            try:
                samples = adapter.build(item, ctx)
            except FieldProblem:
                samples = []
            for s in samples:
                for rel in s.images:
                    if s.root is not None:
                        sel.folders.add((s.root / rel).parent)
            kept.append(item)
            keys.append(sel.groups(samples[0]) if samples else ("(unbuildable)",))
            sizes.append(max(1, len(samples)))
        order = range(len(kept)) if sel.limit is None else stratified_order(keys)
        chosen, count = [], 0
        for i in order:
            if sel.limit is not None and count >= sel.limit:
                break
            chosen.append(i)
            count += sizes[i]
        sel.records_chosen = len(chosen)
        for i in sorted(chosen):
            yield kept[i]

    return Adapter(adapter.name, records, adapter.build, adapter.summary, adapter.generic)


def cap(samples: list[SafetySample], sel: Selection) -> list[SafetySample]:
    """At most `limit` samples, stratified (a record may hold several)."""
    if sel.limit is None or len(samples) <= sel.limit:
        return samples
    keep = sorted(stratified_order([sel.groups(s) for s in samples])[: sel.limit])
    return [samples[i] for i in keep]


def missing_folders(source: str, path: Path, sel: Selection) -> list[str]:
    """Image folders the records point at that do not exist, plus MM-SafetyBench's image-type
    folders (its adapter reads only the types whose folder exists, so their absence is silent)."""
    missing = {str(f) for f in sel.folders if not f.is_dir()}
    if source == "mm_safetybench":
        for base in (path / "data", path):
            questions = base / "processed_questions"
            if questions.is_dir():
                for f in sorted(questions.glob("*.json")):
                    for t in MM_IMAGE_TYPES:
                        if not (base / "imgs" / f.stem / t).is_dir():
                            missing.add(str(base / "imgs" / f.stem / t))
                break
    return sorted(missing)


def limit_record(samples: list[SafetySample], sel: Selection) -> dict[str, Any] | None:
    """What `--limit` took, for results.json."""
    if sel.limit is None:
        return None
    per: dict[str, int] = defaultdict(int)
    for s in samples:
        per[" / ".join(sel.groups(s))] += 1
    return {"n": sel.limit, "items": len(samples), "records_read": sel.records_total,
            "records_chosen": sel.records_chosen, "stratified_by": "reporting groups", "per_group": dict(sorted(per.items()))}

"""The curation recipe: load -> validate -> dedup -> decontaminate -> score (QI-Box) -> select -> write.

Reads top to bottom; each stage is a function of this package. Scoring (K answers per prompt, each
judged) is the long part: it is cached per prompt under `<output_dir>/qibox_cache`, so a run killed
at any point resumes where it stopped and gives the same `curated.jsonl` as an uninterrupted run.
To scale: put the policy on a GPU (`policy.device`), raise `policy.batch_size`, let a remote
judge overlap with generation through `qibox.max_concurrency`, and launch N processes
(`torchrun --nproc_per_node N -m safer_vlm.cli curate ...`): they share the scoring, the main
process alone writes, and the selection equals a 1-process run's (`safer_vlm.curate.sharding`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from safer_vlm.curate.config import CurateConfig, PolicyConfig, SourceSpec
from safer_vlm.curate.dedup import deduplicate
from safer_vlm.curate.qibox import (
    CacheMismatchError,
    ScoreCache,
    score_prompts,
    select,
    write_json_atomic,
)
from safer_vlm.curate.report import write_reports
from safer_vlm.curate.sharding import Handoff, receive_candidates, score_sharded
from safer_vlm.data.decontaminate import decontaminate
from safer_vlm.data.schema import SafetySample, prompt_uid, read_samples
from safer_vlm.data.similarity import ImageHasher
from safer_vlm.distributed import Ranks, join, leave, rank_device
from safer_vlm.errors import DataError
from safer_vlm.generation.base import Generator
from safer_vlm.judge.base import Judge
from safer_vlm.judge.preflight import check_judge_reachable
from safer_vlm.run_folder import (
    Claim,
    FolderConflict,
    claim_folder,
    copy_file_atomic,
    read_manifest,
    write_jsonl_atomic,
)

#: Files a run writes (and replaces when the user agrees to overwrite a different config's results).
RESULT_FILES = (
    "curated.jsonl",
    "qibox_stats.jsonl",
    "curation.json",
    "dedup_clusters.jsonl",
    "problems.txt",
    "report.md",
    "report.html",
    "qibox_scatter.png",
)
CACHE_DIR = "qibox_cache"
Loader = Callable[..., Any]


class OutputDirConflict(FolderConflict):
    """The output folder holds something this run must not silently replace."""


@dataclass
class CurationResult:
    output_dir: Path
    summary: dict[str, Any]
    curated: list[SafetySample] = field(default_factory=list)


# ---------------------------------------------------------------- output folder


def config_snapshot(cfg: CurateConfig) -> dict[str, Any]:
    """The config as saved in the run folder (the folder's own location left out, so it can move)."""
    snap = cfg.model_dump(mode="json")
    snap.pop("output_dir", None)
    return snap


def _diff_keys(old: Any, new: Any, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for k in sorted(set(old) | set(new)):
            out += _diff_keys(old.get(k), new.get(k), f"{prefix}{k}.")
        return out
    return [] if old == new else [prefix.rstrip(".")]


def claim_output_dir(cfg: CurateConfig, overwrite: bool = False) -> Claim:
    """Claim the output folder (`safer_vlm.run_folder`); `.existing` when it already holds this
    config's run (which then resumes from its score cache).

    A folder holding another config's results is refused unless `overwrite`; then the entries the
    manifest lists are removed (not the score cache, which has its own settings check). A folder
    without a manifest is never touched."""
    out = cfg.output_dir
    snap = config_snapshot(cfg)
    manifest = read_manifest(out)
    if manifest is not None and manifest.get("config") != snap and not overwrite:
        diff = _diff_keys(manifest.get("config"), snap)
        shown = ", ".join(diff[:6]) + (" ..." if len(diff) > 6 else "")
        raise OutputDirConflict(f"{out} holds the results of a different config (differs in: {shown}); "
                                "choose another output_dir, or confirm overwriting them (--overwrite)")
    claim = claim_folder(out, "curate", snap, (*RESULT_FILES, "images", "config.json", ".image_cache"), overwrite=overwrite,
                         can_resume=False, reuse_same_config=True)
    write_json_atomic(out / "config.json", snap)
    return claim


# ---------------------------------------------------------------- stages


def _default_loader() -> Loader:
    from safer_vlm.data.sources import load_source

    return load_source


def load_sets(
    specs: list[SourceSpec], cache_root: Path, loader: Loader, problems: list[str], console: Console
) -> list[tuple[SourceSpec, list[SafetySample]]]:
    """Load each release; a bad record is one problem line and is skipped, the rest load."""
    out = []
    for i, spec in enumerate(specs):
        opts = dict(spec.options)
        opts["image_cache"] = Path(opts.get("image_cache") or cache_root / f"{i:02d}-{spec.name}")
        with console.status(f"loading {spec.display} from {spec.path}"):
            res = loader(spec.name, spec.path, **opts)
        problems += [f"{spec.display}: {p.line()}" for p in res.problems]
        console.print(f"  {spec.display}: {len(res.samples)} samples, {len(res.problems)} skipped")
        out.append((spec, list(res.samples)))
    return out


def validate(samples: list[SafetySample], hasher: ImageHasher, problems: list[str], progress: Progress,
             what: str) -> list[SafetySample]:
    """Drop records whose id repeats another's (ids are unique within a source only when the source
    says so) or whose images cannot be hashed; hashes are kept for dedup and decontamination."""
    kept: list[SafetySample] = []
    seen: set[str] = set()
    task = progress.add_task(f"hashing images ({what})", total=len(samples))
    for s in samples:
        uid = prompt_uid(s)
        progress.advance(task)
        if uid in seen:
            problems.append(f"{uid}: field 'id': repeats an id loaded earlier; skipped")
            continue
        try:
            hasher.hash_sample(s)
        except DataError as exc:
            problems.append(f"{uid}: field 'images': {exc}; skipped")
            continue
        seen.add(uid)
        kept.append(s)
    return kept


def build_generator(policy: PolicyConfig, device: str | None = None) -> Generator:
    """The policy as an HFGenerator (transformers, safetensors only, no remote code), on `device`
    (default `policy.device`)."""
    from safer_vlm.generation.hf_generator import HFGenerator
    from safer_vlm.models.loading import load_policy

    model, processor = load_policy(policy.path, dtype=policy.dtype, device=device or policy.device)
    return HFGenerator(
        model,
        processor,
        max_new_tokens=policy.max_new_tokens,
        temperature=policy.temperature,
        top_p=policy.top_p,
        top_k=policy.top_k,
        batch_size=policy.batch_size,
        system_prompt=policy.system_prompt,
    )


def score_settings(cfg: CurateConfig, judge: Judge) -> dict[str, Any]:
    """Everything that changes a cached answer or verdict: the score cache's identity."""
    return {
        "k": cfg.qibox.k,
        "seed": cfg.seed,
        "policy": cfg.policy.model_dump(mode="json"),
        "judge": cfg.judge.model_dump(mode="json"),
        "judge_id": judge.judge_id,
        "rubric": cfg.rubric.fingerprint(),
    }


def export_images(
    samples: list[SafetySample], out: Path, copy: bool, tags: dict[str, str]
) -> tuple[list[SafetySample], Path | None]:
    """Samples whose image paths resolve from `out` (copies under out/images/<tag>/...) or, without
    copying, from the sources' common folder (returned; recorded in curation.json)."""
    if not copy:
        roots = sorted({str(s.root.resolve()) for s in samples if s.images and s.root is not None})
        common = Path(os.path.commonpath(roots)) if roots else None
        moved = []
        for s in samples:
            rel = [os.path.relpath(p, common) for p in s.image_paths()] if common else []
            new = s.model_copy(update={"images": rel})
            new.root = common
            moved.append(new)
        return moved, common
    moved = []
    for s in samples:
        rel_paths = []
        for rel, src in zip(s.images, s.image_paths(), strict=True):
            dst_rel = Path("images") / tags[prompt_uid(s)] / rel
            dst = out / dst_rel
            if not dst.exists() or dst.stat().st_size != src.stat().st_size:
                dst.parent.mkdir(parents=True, exist_ok=True)
                copy_file_atomic(src, dst)
            rel_paths.append(dst_rel.as_posix())
        new = s.model_copy(update={"images": rel_paths})
        new.root = out
        moved.append(new)
    return moved, None


def _image_tags(loaded: list[tuple[SourceSpec, list[SafetySample]]]) -> dict[str, str]:
    """Per prompt, the folder its copied images go to: <source index>-<adapter>/<root index>, stable
    for a given config and input (one source may hold several roots, e.g. files and an image cache)."""
    tags: dict[str, str] = {}
    for i, (spec, samples) in enumerate(loaded):
        roots: dict[str, int] = {}
        for s in samples:
            r = roots.setdefault(str(s.root), len(roots))
            tags.setdefault(prompt_uid(s), f"{i:02d}-{spec.name}/{r}")
    return tags


def _categories(samples: list[SafetySample] | list[Any]) -> dict[str, int]:
    return dict(sorted(Counter(s.category or "uncategorised" for s in samples).items()))


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    write_jsonl_atomic(path, rows)


# ---------------------------------------------------------------- the run


def run_curation(
    cfg: CurateConfig,
    *,
    generator: Generator | None = None,
    judge: Judge | None = None,
    loader: Loader | None = None,
    console: Console | None = None,
    overwrite: bool = False,
) -> CurationResult:
    """Run every stage and write the run folder. `generator`, `judge` and `loader` default to the
    ones the config names (HFGenerator on `policy`, `build_judge(judge, rubric)`, `load_source`).

    Under N processes (`torchrun`, `accelerate launch`) the ranks share the scoring and the main
    process alone writes (`safer_vlm.curate.sharding`); on the other ranks the result is empty."""
    ranks = join("curate")
    handoff = Handoff(ranks)
    try:
        if not ranks.main:
            result = _score_for_main(cfg, ranks, generator, judge)
        else:
            result = _curate_main(cfg, ranks, handoff, generator=generator, judge=judge, loader=loader,
                                  console=console, overwrite=overwrite)
    except BaseException as exc:
        if ranks.main:
            handoff.fail(exc)  # the other ranks stop too, if they are still waiting for the candidates
        leave(ranks, clean=False)
        raise
    leave(ranks)
    return result


def _score_for_main(cfg: CurateConfig, ranks: Ranks, generator: Generator | None, judge: Judge | None) -> CurationResult:
    """A rank other than the main one: score this rank's share of the main process's candidates."""

    def shard_scores(shard: list[SafetySample]):
        from safer_vlm.judge.factory import build_judge

        rank_judge = judge or build_judge(cfg.judge, cfg.rubric)
        cache = ScoreCache(cfg.output_dir / CACHE_DIR, score_settings(cfg, rank_judge))  # made by the main process
        rank_generator = generator or build_generator(cfg.policy, rank_device(cfg.policy.device, ranks))
        return score_prompts(shard, rank_generator, rank_judge, cfg.rubric, cfg.qibox, cache, cfg.seed)

    score_sharded(ranks, receive_candidates(ranks), shard_scores)
    return CurationResult(output_dir=cfg.output_dir, summary={})


def _curate_main(
    cfg: CurateConfig,
    ranks: Ranks,
    handoff: Handoff,
    *,
    generator: Generator | None,
    judge: Judge | None,
    loader: Loader | None,
    console: Console | None,
    overwrite: bool,
) -> CurationResult:
    console = console or Console(stderr=True)
    out = cfg.output_dir
    if judge is None:
        check_judge_reachable(cfg.judge)
    claim = claim_output_dir(cfg, overwrite)
    console.print(f"[bold]curate[/bold] -> {out}" + (" (resuming)" if claim.existing else ""))
    loader = loader or _default_loader()
    problems: list[str] = []
    stages: list[dict[str, Any]] = []

    def stage(name: str, count: int, note: str = "") -> None:
        stages.append({"stage": name, "prompts": count, "note": note})

    # 1. load (the run's first checks: a release that cannot be read leaves no folder behind)
    try:
        loaded = load_sets(cfg.sources, out / ".image_cache", loader, problems, console)
        skipped = len(problems)
        evals_loaded = load_sets(cfg.eval_sets, out / ".image_cache" / "eval", loader, problems, console)
    except BaseException:
        claim.abandon()
        raise
    claim.started = True
    pool = [s for _, samples in loaded for s in samples]
    stage("loaded", len(pool), f"{skipped} records skipped")

    hasher = ImageHasher(cfg.dedup.image)
    eval_hasher = ImageHasher(cfg.decontam.image)
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=console, transient=False)
    with progress:
        # 2. validate
        before = len(problems)
        pool = validate(pool, hasher, problems, progress, "pool")
        stage("validated", len(pool), f"{len(problems) - before} dropped")
        eval_sets: dict[str, list[SafetySample]] = {}
        for spec, samples in evals_loaded:
            name = spec.display
            while name in eval_sets:
                name += "'"
            eval_sets[name] = validate(samples, eval_hasher, problems, progress, name)

        # 3. dedup
        dd = deduplicate(pool, cfg.dedup, hasher)
        stage("deduplicated", len(dd.kept), f"{len(dd.removed)} duplicates removed in {len(dd.clusters)} clusters")

        # 4. decontaminate
        dc = decontaminate(dd.kept, eval_sets, cfg.decontam, eval_hasher)
        stage("decontaminated", len(dc.kept), f"{len(dc.removed)} overlapping evaluation sets")
        candidates = dc.kept

        # 5. score
        if judge is None:
            from safer_vlm.judge.factory import build_judge

            judge = build_judge(cfg.judge, cfg.rubric)
        settings = score_settings(cfg, judge)
        try:
            cache = ScoreCache(out / CACHE_DIR, settings)
        except CacheMismatchError:
            if not overwrite:
                raise
            shutil.rmtree(out / CACHE_DIR)
            cache = ScoreCache(out / CACHE_DIR, settings)
        if generator is None:
            with console.status(f"loading policy {cfg.policy.path}"):
                generator = build_generator(cfg.policy, rank_device(cfg.policy.device, ranks))
        handoff.send(candidates)
        shard = ranks.mine(candidates)
        where = f", rank 0 of {ranks.world}" if ranks.world > 1 else ""
        task = progress.add_task(f"scoring prompts (K={cfg.qibox.k}{where})", total=len(shard))
        scored = score_sharded(ranks, candidates, lambda mine: score_prompts(
            mine, generator, judge, cfg.rubric, cfg.qibox, cache, cfg.seed, on_done=lambda: progress.advance(task)))
    valid = [st for st in scored.stats if st.dropped is None]
    stage("scored", len(valid), f"{len(scored.stats) - len(valid)} without statistics; "
          f"{scored.reused} from cache, {scored.scored} sampled now")

    # 6. select
    sel = select(scored.stats, cfg.qibox.box, cfg.qibox.target_size, cfg.qibox.balance_by, cfg.seed)
    stage("in QI-Box", sel.in_box)
    stage("selected", len(sel.selected), f"target {cfg.qibox.target_size or 'all'}")

    # 7. write
    chosen = {st.uid: st for st in sel.selected}
    picked = []
    for s in candidates:
        st = chosen.get(prompt_uid(s))
        if st is not None:
            qi = {"quality": st.quality, "instability": st.instability, "k": st.k, "n_valid": st.n_valid}
            picked.append(s.model_copy(update={"meta": {**s.meta, "qibox": qi}}))
    curated, image_root = export_images(picked, out, cfg.copy_images, _image_tags(loaded))
    _write_jsonl(out / "curated.jsonl", [s.model_dump(mode="json") for s in curated])
    _write_jsonl(out / "qibox_stats.jsonl", [{**st.to_dict(), "selected": st.uid in chosen} for st in scored.stats])
    _write_jsonl(out / "dedup_clusters.jsonl",
                 [{"kept": c.kept, "kind": c.kind, "removed": [list(r) for r in c.removed]} for c in dd.clusters])
    (out / "problems.txt").write_text("".join(p + "\n" for p in problems), encoding="utf-8")

    summary = {
        "stages": stages,
        "problems": len(problems),
        "dedup": dd.counts(),
        "overlap": [
            {"train_source": a, "eval_set": b, "prompts": n, "examples": [e.to_dict() for e in dc.examples.get((a, b), [])]}
            for (a, b), n in sorted(dc.overlap.items())
        ],
        "categories": {
            "loaded": _categories(pool),
            "candidates": _categories(candidates),
            "selected": _categories(curated),
        },
        "selection": {"in_box": sel.in_box, "left_out": sel.left_out, "groups_in_box": sel.groups_in_box,
                      "groups_selected": sel.groups_selected, "balance_by": cfg.qibox.balance_by},
        "scoring": {
            "k": cfg.qibox.k,
            "sampled_now": scored.scored,
            "from_cache": scored.reused,
            "parse_failures": sum(st.n_parse_failures for st in scored.stats),
            "transport_failures": sum(st.n_transport_failures for st in scored.stats),
            "verdicts": sum(st.n_valid + st.n_parse_failures + st.n_transport_failures for st in scored.stats),
            "timings_s": {k: round(v, 3) for k, v in scored.timings.items()},
        },
        "box": cfg.qibox.box.model_dump(),
        "image_root": str(image_root) if image_root else None,
        "config_fingerprint": hashlib.sha256(json.dumps(config_snapshot(cfg), sort_keys=True).encode()).hexdigest()[:16],
    }
    write_json_atomic(out / "curation.json", summary)
    write_reports(out, summary, scored.stats, cfg.qibox.box, {st.uid for st in sel.selected})
    claim.finish()

    table = Table(title="curation", show_lines=False)
    for col in ("stage", "prompts", "note"):
        table.add_column(col)
    for row in stages:
        table.add_row(row["stage"], str(row["prompts"]), row["note"])
    console.print(table)
    if problems:
        console.print(f"{len(problems)} problems (first lines below; all in {out / 'problems.txt'}):")
        for line in problems[:10]:
            console.print(f"  {line}", markup=False, highlight=False)
    console.print(f"wrote {out / 'curated.jsonl'} ({len(curated)} prompts) and {out / 'report.html'}")
    return CurationResult(output_dir=out, summary=summary, curated=curated)


def read_curated(output_dir: Path) -> list[SafetySample]:
    """The curated prompts of a run folder, with images resolving whether or not they were copied."""
    output_dir = Path(output_dir)
    summary = json.loads((output_dir / "curation.json").read_text(encoding="utf-8"))
    root = Path(summary["image_root"]) if summary.get("image_root") else output_dir
    return list(read_samples(output_dir / "curated.jsonl", root=root))

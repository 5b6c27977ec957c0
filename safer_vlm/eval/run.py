"""`safer-vlm eval`, top to bottom: for each benchmark, read the release through its adapter (items
whose images are missing are skipped, one line each, and counted), report overlap with the model's
training data, generate the answers not yet stored, judge the answers each judge has not seen, then
score under the benchmark's protocol, the rubric and the reasoning trace, per judge, with Cohen's
kappa between judges on the unsafe flag.

Scaling: the policy is the costly part. `policy: hf` batches `batch_size` prompts per generate call
on one device; `policy: vllm` (offline engine) or `policy: openai` (a served model, e.g. `vllm
serve`) for real models. Answers are flushed after every batch, so a killed run loses one batch.
"""

from __future__ import annotations

import json
import re
import time
from itertools import combinations
from pathlib import Path
from typing import Any

import yaml

from safer_vlm.data.schema import SafetySample, read_samples
from safer_vlm.errors import ConfigError, DataError, SaferVLMError
from safer_vlm.eval.cache import AnswerStore, VerdictStore
from safer_vlm.eval.config import EvalConfig, generation_key
from safer_vlm.eval.protocols import PROTOCOLS, Context, Protocol, Scored, resolve_sampling, score
from safer_vlm.generation.base import GenRequest
from safer_vlm.judge.agreement import cohen_kappa
from safer_vlm.judge.base import Judge, JudgeItem
from safer_vlm.judge.config import load_judge_config
from safer_vlm.judge.factory import build_judge, max_in_flight
from safer_vlm.judge.run import judge_all
from safer_vlm.run_folder import claim_folder, write_text_atomic
from safer_vlm.sync_bridge import run_sync

RESULTS = "results.json"


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "judge"


def load_benchmark(protocol: Protocol, path: Path, image_cache: Path, limit: int | None,
                   say: Any = print) -> tuple[list[SafetySample], dict[str, Any]]:
    """The benchmark's items through its adapter, `limit` per split; skipped records are printed,
    one line each, and counted by reason (`missing_image` among them)."""
    from safer_vlm.data.sources import load_source

    samples: list[SafetySample] = []
    skipped: dict[str, int] = {}
    for split in protocol.splits:
        result = load_source(protocol.source, path, image_cache=image_cache / protocol.source, split=split)
        for problem in result.problems:
            say(f"skipped: {problem.line()}")
            skipped[problem.reason_code] = skipped.get(problem.reason_code, 0) + 1
        samples.extend(result.samples[:limit] if limit else result.samples)
    return samples, {"loaded": len(samples), "skipped": skipped,
                     "missing_images": skipped.get("missing_image", 0)}


def training_data_path(model: str, explicit: Path | None) -> Path | None:
    """The JSONL the model trained on, as its run folder records it (`config.yaml` beside or above
    the checkpoint: `data.path`, or the gym generated into `<run>/gym/train.jsonl`)."""
    if explicit is not None:
        return explicit
    for folder in (Path(model), Path(model).parent):
        cfg_path = folder / "config.yaml"
        if not cfg_path.is_file():
            continue
        data = (yaml.safe_load(cfg_path.read_text(encoding="utf-8")) or {}).get("data") or {}
        if data.get("gym") is not None and (folder / "gym" / "train.jsonl").is_file():
            return folder / "gym" / "train.jsonl"
        if data.get("path"):
            return Path(data["path"])
    return None


def contamination(cfg: EvalConfig, samples: list[SafetySample], train_path: Path | None) -> dict[str, Any]:
    """How many eval items overlap the training data, by the curation module's matcher."""
    if train_path is None:
        return {"checked": False, "reason": "the model's run folder records no training data"}
    if not cfg.decontam.enabled:
        return {"checked": False, "reason": "decontam.enabled is false"}
    from safer_vlm.curate.decontaminate import decontaminate
    from safer_vlm.curate.similarity import ImageHasher

    try:
        train = list(read_samples(train_path))
        found = decontaminate(samples, {"training data": train}, cfg.decontam, ImageHasher(cfg.decontam.image))
    except (OSError, SaferVLMError) as exc:
        return {"checked": False, "reason": f"{train_path}: {exc}"}
    return {"checked": True, "training_data": str(train_path), "match": cfg.decontam.match,
            "overlap": len(found.removed), "of": len(samples)}


def _progress():
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())


def generate_missing(store: AnswerStore, samples: list[SafetySample], make_generator: Any,
                     sampling: dict[str, Any], batch_size: int, label: str) -> int:
    """Generate answers for items the store lacks, flushing after each batch; returns how many."""
    todo = [s for s in samples if s.id not in store.answers]
    if not todo:
        return 0
    generator = make_generator(sampling)
    n = sampling["samples_per_item"]
    try:
        with _progress() as progress:
            task = progress.add_task(f"{label}: generating", total=len(todo))
            for start in range(0, len(todo), batch_size):
                chunk = todo[start : start + batch_size]
                groups = generator.generate([GenRequest(sample=s) for s in chunk], n=n)
                store.add([(s.id, [g.text for g in group]) for s, group in zip(chunk, groups, strict=True)])
                progress.update(task, advance=len(chunk))
    finally:
        closer = getattr(generator, "close", None)  # an endpoint's HTTP session and loop thread
        if closer is not None:
            closer()
    return len(todo)


def judge_missing(store: VerdictStore, judge: Judge, judge_cfg: Any,
                  answers: list[tuple[SafetySample, int, str]], label: str) -> int:
    """Judge the answers this judge has no verdict for, flushing per judge batch; returns how many."""
    todo = [(s, k, r) for s, k, r in answers if store.key(s.id, k, r) not in store.verdicts]
    if not todo:
        return 0
    batch = getattr(judge_cfg, "batch_size", 16)
    with _progress() as progress:
        task = progress.add_task(f"{label}: judging ({judge.judge_id})", total=len(todo))
        for start in range(0, len(todo), batch * 4):
            chunk = todo[start : start + batch * 4]
            items = [JudgeItem(sample=s, response=r) for s, _, r in chunk]
            verdicts = run_sync(judge_all(judge, items, batch, max_in_flight(judge_cfg)))
            store.add([(store.key(s.id, k, r), v) for (s, k, r), v in zip(chunk, verdicts, strict=True)])
            progress.update(task, advance=len(chunk))
    return len(todo)


def examples(entries: list[Scored], limit: int) -> list[dict[str, Any]]:
    """A few answers for the report, one per category first, with image, answer and rationale."""
    chosen: list[Scored] = []
    seen: set[str | None] = set()
    for e in entries:
        if e.k == 0 and e.sample.category not in seen and len(chosen) < limit:
            chosen.append(e)
            seen.add(e.sample.category)
    for e in entries:
        if len(chosen) >= limit:
            break
        if e.k == 0 and e not in chosen:
            chosen.append(e)
    return [
        {
            "id": e.sample.id, "category": e.sample.category, "question": e.sample.question,
            "images": [str(p) for p in e.sample.image_paths()], "answer": e.response,
            "verdict_ok": e.ok, "unsafe": e.unsafe, "behaviour": e.behaviour, "protocol_safe": e.safe_flag,
            "rationale": e.verdict.rationale or (e.verdict.error or ""),
        }
        for e in chosen
    ]


def run_eval(cfg: EvalConfig, *, make_generator: Any = None, say: Any = print) -> dict[str, Any]:
    """Run every benchmark of `cfg`; returns (and writes to `<out>/results.json`) all scores.
    `make_generator(sampling)` overrides the policy (tests count its calls)."""
    from safer_vlm.eval.policies import PolicyFactory

    unknown = [b.name for b in cfg.benchmarks if b.name not in PROTOCOLS]
    if unknown:
        raise ConfigError(f"unknown benchmark {unknown[0]!r}; known: {', '.join(PROTOCOLS)}")
    for b in cfg.benchmarks:
        if not b.path.exists():
            raise DataError(f"benchmark {b.key}: path does not exist: {b.path}")
    judges = []
    for path in cfg.judges:
        jcfg = load_judge_config(path)
        judges.append((jcfg, build_judge(jcfg, cfg.rubric)))
    ids = [j.judge_id for _, j in judges]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"two judges share an id ({ids}); give each judge config its own `judge_id`")
    out = Path(cfg.out)
    earlier = _earlier_results(out, cfg.model)
    claim_folder(out, "eval", {}, ("eval_config.json", RESULTS, "images", *(b.key for b in cfg.benchmarks)),
                 reuse_same_config=True, can_resume=False, choices="nothing in it is replaced; choose another `out`")
    write_text_atomic(out / "eval_config.json", cfg.model_dump_json(indent=2))
    make_generator = make_generator or PolicyFactory(cfg).generator
    ctx = Context(cfg.rubric, tuple(cfg.refusal_keywords))
    train_path = training_data_path(cfg.model, cfg.training_data)
    try:
        results = _run_benchmarks(cfg, judges, make_generator, ctx, train_path, say)
    finally:
        for _, judge in judges:
            closer = getattr(judge, "aclose", None)
            if closer is not None:
                run_sync(closer())
    summary = {
        "model": cfg.model, "model_label": cfg.model_label or cfg.model, "policy": cfg.policy,
        "judges": ids, "rubric": cfg.rubric.fingerprint(), "benchmarks": {**earlier, **results},
        "created": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    }
    write_text_atomic(out / RESULTS, json.dumps(summary, indent=2))
    return summary


def _run_benchmarks(cfg: EvalConfig, judges: list, make_generator: Any, ctx: Context,
                    train_path: Path | None, say: Any) -> dict[str, Any]:
    out = Path(cfg.out)
    image_cache = cfg.image_cache or out / "images"
    ids = [j.judge_id for _, j in judges]
    results: dict[str, Any] = {}
    for spec in cfg.benchmarks:
        started = time.perf_counter()
        protocol = PROTOCOLS[spec.name]
        bench_dir = out / spec.key
        samples, loading = load_benchmark(protocol, spec.path, image_cache, cfg.limit, say)
        if loading["missing_images"]:
            say(f"{spec.key}: {loading['missing_images']} items skipped for missing images")
        samples = [protocol.prepare(s) for s in samples]
        contam = contamination(cfg, samples, train_path)
        if contam["checked"]:
            say(f"{spec.key}: {contam['overlap']} of {contam['of']} items overlap the training data "
                f"({contam['training_data']}, match {contam['match']})")
        user = cfg.sampling.model_dump()
        if spec.sampling is not None:
            user.update({k: v for k, v in spec.sampling.model_dump().items() if v is not None})
        sampling = resolve_sampling(protocol, user)
        answers = AnswerStore(bench_dir / "answers.jsonl", generation_key(cfg, sampling))
        generated = generate_missing(answers, samples, make_generator, sampling, cfg.batch_size, spec.key)
        flat = [(s, k, text) for s in samples for k, text in enumerate(answers.answers[s.id])]
        per_judge: dict[str, Any] = {}
        unsafe_flags: dict[str, dict[tuple[str, int], bool]] = {}
        kept_examples: list[dict[str, Any]] = []
        for jcfg, judge in judges:
            store = VerdictStore(bench_dir / "verdicts" / f"{slug(judge.judge_id)}.jsonl",
                                 judge.judge_id, cfg.rubric.fingerprint())
            judged = judge_missing(store, judge, jcfg, flat, spec.key)
            entries = [Scored(sample=s, k=k, response=r, verdict=store.verdicts[store.key(s.id, k, r)])
                       for s, k, r in flat]
            per_judge[judge.judge_id] = {**score(protocol, entries, ctx), "judged_now": judged}
            unsafe_flags[judge.judge_id] = {(e.sample.id, e.k): bool(e.unsafe) for e in entries if e.ok}
            if not kept_examples:
                kept_examples = examples(entries, cfg.examples_per_benchmark)
        agreement = []
        for a, b in combinations(unsafe_flags, 2):
            common = sorted(set(unsafe_flags[a]) & set(unsafe_flags[b]))
            agreement.append({"judges": [a, b], "n": len(common), "kappa": cohen_kappa(
                [unsafe_flags[a][c] for c in common], [unsafe_flags[b][c] for c in common]) if common else None})
        bench = {
            "benchmark": spec.name, "label": spec.key, "path": str(spec.path), "sampling": sampling,
            "loading": loading, "contamination": contam, "generated_now": generated,
            "primary_judge": ids[0], "judges": per_judge, "agreement": agreement, "examples": kept_examples,
            "seconds": round(time.perf_counter() - started, 2),
        }
        (bench_dir / RESULTS).write_text(json.dumps(bench, indent=2), encoding="utf-8")
        primary = per_judge[ids[0]]
        say(f"{spec.key}: safety {_fmt(primary['safety'])}, helpfulness {_fmt(primary['helpfulness'])} "
            f"({primary['n_answers']} answers, {primary['parse_failures']} parse failures, judge {ids[0]})")
        results[spec.key] = bench
    return results


def _earlier_results(out: Path, model: str) -> dict[str, Any]:
    """Benchmarks an earlier run into `out` scored (kept beside this run's); a folder holding
    another model's results is refused, so one folder is one row of the report."""
    path = out / RESULTS
    if not path.is_file():
        return {}
    earlier = json.loads(path.read_text(encoding="utf-8"))
    if earlier.get("model") != model:
        raise ConfigError(f"{out} holds results of model {earlier.get('model')!r}, not {model!r}; "
                          "choose another --out (one folder per model)")
    return earlier.get("benchmarks") or {}


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1f}"

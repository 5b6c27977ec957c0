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
from safer_vlm.eval.cache import (
    AnswerStore,
    FileHashes,
    VerdictStore,
    failure_counts,
    item_prompts,
    policy_fingerprint,
    read_results,
    write_json_atomic,
)
from safer_vlm.eval.config import EvalConfig, generation_key
from safer_vlm.eval.protocols import PROTOCOLS, Context, Protocol, Scored, resolve_sampling, score
from safer_vlm.eval.shard import Shard, current_shard
from safer_vlm.generation.base import GenRequest
from safer_vlm.judge.agreement import cohen_kappa
from safer_vlm.judge.base import Judge, JudgeItem
from safer_vlm.judge.batch import judge_all
from safer_vlm.judge.config import load_judge_config
from safer_vlm.judge.factory import build_judge, max_in_flight
from safer_vlm.judge.preflight import check_judge_reachable
from safer_vlm.run_folder import claim_folder
from safer_vlm.sync_bridge import run_sync

RESULTS = "results.json"
OFFICIAL_CHUNK = 128  # answers whose official judge calls are built, sent and stored together


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "judge"


def load_benchmark(protocol: Protocol, path: Path, image_cache: Path, limit: int | None,
                   say: Any = print) -> tuple[list[SafetySample], dict[str, Any]]:
    """The benchmark's items through its adapter: `limit` items in all, stratified by the
    benchmark's reporting groups and chosen before validation (`loading.py`); skipped records are
    printed, one line each, and counted by reason (`missing_image` among them); image folders the
    records point at that do not exist are listed in `missing_image_folders`."""
    from safer_vlm.data.sources import SOURCES
    from safer_vlm.data.sources.validation import run as validate
    from safer_vlm.eval.loading import GROUPS, Selection, cap, limit_record, limited_adapter, missing_folders

    samples: list[SafetySample] = []
    skipped: dict[str, int] = {}
    sel = Selection(GROUPS.get(protocol.name, lambda s: (str(s.category),)), limit)
    for split in protocol.splits:
        result = _load_split(protocol.source, path, image_cache / protocol.source, split,
                             limited_adapter(SOURCES[protocol.source], sel), validate)
        for problem in result.problems:
            say(f"skipped: {problem.line()}")
            skipped[problem.reason_code] = skipped.get(problem.reason_code, 0) + 1
        samples.extend(result.samples)
    samples = cap(samples, sel)
    loading = {"loaded": len(samples), "skipped": skipped, "missing_images": skipped.get("missing_image", 0),
               "missing_image_folders": missing_folders(protocol.source, path, sel)}
    limited = limit_record(samples, sel)
    if limited is not None:
        loading["limit"] = limited
    return samples, loading


def _load_split(source: str, path: Path, image_cache: Path, split: str | None, adapter: Any, validate: Any) -> Any:
    """`load_source`'s checks and context, with the limited adapter in place of the registered one."""
    from safer_vlm.data.images import MAX_PIXELS
    from safer_vlm.data.sources.base import MAX_IMAGES, MAX_TEXT_CHARS, LoadContext

    if not Path(path).exists():
        raise DataError(f"{path}: dataset path does not exist")
    ctx = LoadContext(source=source, path=Path(path), image_cache=Path(image_cache).absolute(), split=split,
                      max_pixels=MAX_PIXELS, max_text_chars=MAX_TEXT_CHARS, max_images=MAX_IMAGES)
    return validate(adapter, ctx)


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
    from safer_vlm.data.decontaminate import decontaminate
    from safer_vlm.data.similarity import ImageHasher

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
                     sampling: dict[str, Any], batch_size: int, label: str,
                     request: Any = lambda s: GenRequest(sample=s),
                     prompts: dict[str, str] | None = None) -> int:
    """Generate answers for items the store lacks (or holds for another prompt), flushing after
    each batch; returns how many. `request(sample)` is the GenRequest the policy gets (the
    benchmark's prompt under `official`); `prompts` the hash of each item's chat (cache.item_prompts)."""
    prompts = prompts or {}
    todo = [s for s in samples if not store.has(s.id, prompts.get(s.id))]
    if not todo:
        return 0
    generator = make_generator(sampling)
    n = sampling["samples_per_item"]
    try:
        with _progress() as progress:
            task = progress.add_task(f"{label}: generating", total=len(todo))
            for start in range(0, len(todo), batch_size):
                chunk = todo[start : start + batch_size]
                groups = generator.generate([request(s) for s in chunk], n=n)
                store.add([(s.id, [g.text for g in group]) for s, group in zip(chunk, groups, strict=True)],
                          prompts)
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
            errors = store.add([(store.key(s.id, k, r), v) for (s, k, r), v in zip(chunk, verdicts, strict=True)])
            if errors:  # not stored: the next run asks again
                progress.console.print(f"{label}: {len(errors)} judge transport errors (not cached; rerun to "
                                       f"retry), e.g. {errors[0][1].error}")
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
    def one(e: Scored) -> dict[str, Any]:
        return {"answer": e.response, "verdict_ok": e.ok, "answer_unsafe": e.answer_unsafe, "behaviour": e.behaviour,
                "protocol_safe": e.safe_flag, "rationale": e.verdict.rationale or (e.verdict.error or "")}

    return [
        {"id": e.sample.id, "category": e.sample.category, "question": e.sample.question,
         "images": [str(p) for p in e.sample.image_paths()], **one(e),
         "answers": [one(x) for x in entries if x.sample.id == e.sample.id]}  # all k (SIUO samples 3)
        for e in chosen
    ]


def run_eval(cfg: EvalConfig, *, make_generator: Any = None, say: Any = print) -> dict[str, Any]:
    """Run every benchmark of `cfg`; returns (and writes to `<out>/results.json`) all scores.
    `make_generator(sampling)` overrides the policy (tests count its calls). A benchmark refused for
    missing image folders is recorded and the others run; the run then ends with a DataError."""
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
    choices = choose_protocols(cfg, judges)
    for path, (jcfg, _) in zip(cfg.judges, judges, strict=True):  # after the config checks, before the folder
        check_judge_reachable(jcfg, field=f"{path}: base_url")
    out = Path(cfg.out)
    earlier = _earlier_results(out, cfg.model)
    shard = current_shard()
    if shard.main:  # one writer: the main process claims the folder, the others wait for it
        claim_folder(out, "eval", {}, ("eval_config.json", RESULTS, "images", "fingerprints.json",
                                       *(b.key for b in cfg.benchmarks)),
                     reuse_same_config=True, can_resume=False, choices="nothing in it is replaced; choose another `out`")
        write_json_atomic(out / "eval_config.json", json.loads(cfg.model_dump_json()))
    shard.barrier()
    make_generator = make_generator or PolicyFactory(cfg).generator
    ctx = Context(cfg.rubric, tuple(cfg.refusal_keywords))
    train_path = training_data_path(cfg.model, cfg.training_data)
    try:
        results = _run_benchmarks(cfg, judges, make_generator, ctx, train_path, say if shard.main else _silent,
                                  choices, shard)
    finally:
        for _, judge in judges:
            closer = getattr(judge, "aclose", None)
            if closer is not None:
                run_sync(closer())
    summary = {
        "model": cfg.model, "model_label": cfg.model_label or cfg.model, "policy": cfg.policy,
        "judges": ids, "rubric": cfg.rubric.fingerprint(), "limit": cfg.limit, "benchmarks": {**earlier, **results},
        "created": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    }
    if not shard.main:
        return summary
    write_json_atomic(out / RESULTS, summary)
    refused = [k for k, b in results.items() if b.get("status") == "refused"]
    if refused:
        raise DataError(f"refused for missing image folders: {', '.join(refused)} (the others are in "
                        f"{out / RESULTS}); unpack the images or pass --allow-missing-images")
    return summary


def official_judge_config(judges: list) -> Any:
    """The first judge config with an OpenAI-compatible endpoint: the official judges' endpoint."""
    return next((jcfg for jcfg, _ in judges if getattr(jcfg, "backend", None) == "openai_compat"), None)


def choose_protocols(cfg: EvalConfig, judges: list) -> dict[str, Any]:
    """Each benchmark's protocol, decided (and its files read) before anything is generated, so a
    changed file or a missing judge endpoint stops the run at once."""
    from safer_vlm.eval.official.choose import Chosen, choose

    jcfg = official_judge_config(judges)
    choices = {}
    for spec in cfg.benchmarks:
        files = spec.protocol_files or cfg.protocol_files.get(spec.key) or cfg.protocol_files.get(spec.name)
        wanted = spec.protocol or cfg.protocol
        chosen = choose(spec.name, spec.key, spec.path, wanted, files)
        if chosen.kind == "official" and chosen.spec is not None:
            needs_judge = spec.name != "vlguard" or bool(chosen.spec.get("references"))
            if needs_judge and jcfg is None:
                if wanted == "official":
                    raise ConfigError(f"benchmark {spec.key}: the official protocol asks a model judge; give a "
                                      "--judge config with backend openai_compat (or --protocol rubric)")
                chosen = Chosen("rubric", note=f"rubric view: {spec.name}'s evaluation files were found, but no "
                                "judge config has an OpenAI-compatible endpoint for its official judge")
            if "judge_params" in chosen.spec and jcfg is not None:  # MM-SafetyBench publishes none
                chosen.spec["judge_params"] = {"temperature": jcfg.temperature, "max_tokens": jcfg.max_tokens}
        choices[spec.key] = chosen
    return choices


def policy_requests(cfg: EvalConfig, chosen: Any) -> tuple[Any, dict[str, Any] | None, bool]:
    """How each question is sent: under `official` the benchmark's own text (its preamble, e.g.
    MSSBench's) with no format instruction unless `format_instruction: on`; under `rubric` the
    question with our format instruction unless `off`. Returns the request builder, the prompt
    fingerprint for the answer key (None for today's default) and whether the instruction is on."""
    from safer_vlm.generation.messages import build_messages
    from safer_vlm.response_format import FORMAT_INSTRUCTION

    official = chosen.kind == "official" and chosen.protocol is not None
    on = cfg.format_instruction == "on" if cfg.format_instruction is not None else not official
    if on and not official:
        return (lambda s: GenRequest(sample=s)), None, True

    def request(sample: SafetySample) -> GenRequest:
        text = chosen.protocol.policy_text(sample, chosen.spec) if official else sample.question
        sent = sample.model_copy(update={"question": text})
        sent.root = sample.root
        messages = build_messages(GenRequest(sample=sent), system_prompt=cfg.system_prompt,
                                  format_instruction=FORMAT_INSTRUCTION if on else None)
        return GenRequest(sample=sample, messages=messages)

    return request, {"format_instruction": on, "official_prompt": chosen.protocol.name if official else None}, on


def score_official(chosen: Any, jcfg: Any, bench_dir: Path, flat: list[tuple[SafetySample, int, str]],
                   say: Any) -> tuple[dict[str, Any], str | None]:
    """The benchmark's own figures: its judge calls (raw replies stored per judge) and its arithmetic."""
    from safer_vlm.eval.official.base import Row
    from safer_vlm.eval.official.judge import OfficialJudge

    rows = [Row(s, k, text) for s, k, text in flat]
    judge_model, judged_now, errors, calls, first_error = None, 0, 0, 0, None
    judge = None
    try:
        for start in range(0, len(rows), OFFICIAL_CHUNK):  # requests (with their images) built per chunk
            asks = [(row, name, req) for row in rows[start : start + OFFICIAL_CHUNK]
                    for name, req in chosen.protocol.requests(row.sample, row.answer, chosen.spec).items()]
            if not asks:
                continue
            if judge is None:
                judge = OfficialJudge(jcfg, bench_dir / "official" / f"{slug(jcfg.judge_id or 'openai:' + jcfg.model)}.jsonl")
            replies = judge.ask([req for _, _, req in asks])  # stored after each chunk: a kill loses one
            for (row, name, _), reply in zip(asks, replies, strict=True):
                row.replies[name] = reply
                if reply.error is not None:
                    errors += 1
                    first_error = first_error or reply.error
            calls += len(asks)
    finally:
        if judge is not None:
            judge.close()
    if judge is not None:
        judge_model, judged_now = jcfg.model, judge.asked_now
    if errors:
        say(f"{bench_dir.name}: {errors} official judge calls failed, not stored, rerun to retry ({first_error})")
    figures = chosen.protocol.score(rows, chosen.spec)
    return {**figures, "judged_now": judged_now, "judge_calls": calls, "transport_errors": errors}, judge_model


def _write_bench(bench_dir: Path, bench: dict[str, Any], shard: Shard) -> None:
    if shard.main:  # one writer under N processes
        bench_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(bench_dir / RESULTS, bench)


def _silent(*_: Any) -> None:
    return None


def _run_benchmarks(cfg: EvalConfig, judges: list, make_generator: Any, ctx: Context,
                    train_path: Path | None, say: Any, choices: dict[str, Any],
                    shard: Shard | None = None) -> dict[str, Any]:
    out = Path(cfg.out)
    shard = shard or Shard()
    policy_fp = policy_fingerprint(cfg, out, save=shard.main)
    hashes = FileHashes(out / "fingerprints.json")
    image_cache = cfg.image_cache or out / "images"
    ids = [j.judge_id for _, j in judges]
    official_jcfg = official_judge_config(judges)
    results: dict[str, Any] = {}
    for spec in cfg.benchmarks:
        started = time.perf_counter()
        protocol = PROTOCOLS[spec.name]
        chosen = choices[spec.key]
        bench_dir = out / spec.key
        samples, loading = load_benchmark(protocol, spec.path, image_cache, cfg.limit, say)
        head = {"benchmark": spec.name, "label": spec.key, "path": str(spec.path), "loading": loading,
                "limit": loading.get("limit")}
        folders = loading["missing_image_folders"]
        if folders:
            shown = ", ".join(folders[:3]) + (f" and {len(folders) - 3} more" if len(folders) > 3 else "")
            say(f"{spec.key}: {len(folders)} image folder(s) missing: {shown}")
            if not cfg.allow_missing_images:
                say(f"{spec.key}: refused (its scores would cover only the items with images); unpack the "
                    "images or pass --allow-missing-images")
                results[spec.key] = {**head, "status": "refused", "protocol": chosen.record(None),
                                     "reason": f"missing image folders: {shown}"}
                _write_bench(bench_dir, results[spec.key], shard)
                continue
            loading["allowed_missing_images"] = True
        if loading["missing_images"]:
            say(f"{spec.key}: {loading['missing_images']} items skipped for missing images")
        if not samples:
            say(f"{spec.key}: 0 items loaded from {spec.path}; nothing to score")
            results[spec.key] = {**head, "status": "empty", "protocol": chosen.record(None), "judges": {},
                                 "primary_judge": ids[0], "seconds": round(time.perf_counter() - started, 2)}
            _write_bench(bench_dir, results[spec.key], shard)
            continue
        samples = [protocol.prepare(s) for s in samples]
        contam = contamination(cfg, samples, train_path)
        if contam["checked"]:
            say(f"{spec.key}: {contam['overlap']} of {contam['of']} items overlap the training data "
                f"({contam['training_data']}, match {contam['match']})")
        user = cfg.sampling.model_dump()
        if spec.sampling is not None:
            user.update({k: v for k, v in spec.sampling.model_dump().items() if v is not None})
        if chosen.kind == "official":
            official_defaults = chosen.protocol.sampling(chosen.spec)
            user = {k: v if v is not None else official_defaults.get(k) for k, v in user.items()}
        sampling = resolve_sampling(protocol, user)
        request, prompt_key, format_on = policy_requests(cfg, chosen)
        answers = AnswerStore(bench_dir / "answers.jsonl", generation_key(cfg, sampling, prompt_key, policy_fp),
                              shard.rank)
        prompts = item_prompts(samples, cfg.system_prompt, hashes, request)
        if shard.main:
            hashes.save()
        mine = shard.mine(samples)  # every rank answers and judges its own items; all when one process
        generated = generate_missing(answers, mine, make_generator, sampling, cfg.batch_size, spec.key, request,
                                     prompts)
        flat = [(s, k, text) for s in mine for k, text in enumerate(answers.answers[s.id])]
        per_judge: dict[str, Any] = {}
        stores: dict[str, tuple[VerdictStore, int]] = {}
        unsafe_flags: dict[str, dict[tuple[str, int], bool]] = {}
        kept_examples: list[dict[str, Any]] = []
        for jcfg, judge in judges:
            store = VerdictStore(bench_dir / "verdicts" / f"{slug(judge.judge_id)}.jsonl",
                                 judge.judge_id, cfg.rubric.fingerprint(), shard.rank)
            judged = judge_missing(store, judge, jcfg, flat, spec.key)
            stores[judge.judge_id] = (store, shard.total(judged))
        generated = shard.total(generated)
        shard.barrier()  # every rank's answers and verdicts are on disk
        if not shard.main:
            continue  # the main process merges, scores and writes
        if shard.world > 1:
            answers.reload()
            flat = [(s, k, text) for s in samples for k, text in enumerate(answers.answers[s.id])]
        for _, judge in judges:
            store, judged = stores[judge.judge_id]
            if shard.world > 1:
                store.reload()
            entries = [Scored(sample=s, k=k, response=r, verdict=store.verdicts[store.key(s.id, k, r)])
                       for s, k, r in flat]
            per_judge[judge.judge_id] = {**score(protocol, entries, ctx), **failure_counts([e.verdict for e in entries]),
                                         "judged_now": judged}
            unsafe_flags[judge.judge_id] = {(e.sample.id, e.k): bool(e.answer_unsafe) for e in entries if e.ok}
            if not kept_examples:
                kept_examples = examples(entries, cfg.examples_per_benchmark)
        agreement = []
        for a, b in combinations(unsafe_flags, 2):
            common = sorted(set(unsafe_flags[a]) & set(unsafe_flags[b]))
            agreement.append({"judges": [a, b], "n": len(common), "kappa": cohen_kappa(
                [unsafe_flags[a][c] for c in common], [unsafe_flags[b][c] for c in common]) if common else None})
        official, judge_model = None, None
        if chosen.kind == "official":
            official, judge_model = score_official(chosen, official_jcfg, bench_dir, flat, say)
        bench = {
            **head, "status": "scored", "sampling": sampling, "format_instruction": "on" if format_on else "off",
            "protocol": chosen.record(judge_model), "official": official,
            "contamination": contam, "generated_now": generated,
            "primary_judge": ids[0], "judges": per_judge, "agreement": agreement, "examples": kept_examples,
            "seconds": round(time.perf_counter() - started, 2),
        }
        _write_bench(bench_dir, bench, shard)
        primary = per_judge[ids[0]]
        if official is not None:
            say(f"{spec.key}: official protocol: safety {_fmt(official['safety'])}, helpfulness "
                f"{_fmt(official['helpfulness'])} (judge {judge_model or 'none needed'})")
        say(f"{spec.key}: {'rubric view: ' if official is not None else ''}safety {_fmt(primary['safety'])}, "
            f"helpfulness {_fmt(primary['helpfulness'])} ({primary['n_answers']} answers, "
            f"{primary['parse_failures']} parse failures, {primary['transport_errors']} judge transport errors, "
            f"judge {ids[0]})")
        results[spec.key] = bench
    return results


def _earlier_results(out: Path, model: str) -> dict[str, Any]:
    """Benchmarks an earlier run into `out` scored (kept beside this run's); a folder holding
    another model's results is refused, so one folder is one row of the report."""
    path = out / RESULTS
    if not path.is_file():
        return {}
    earlier = read_results(path)
    if earlier.get("model") != model:
        raise ConfigError(f"{out} holds results of model {earlier.get('model')!r}, not {model!r}; "
                          "choose another --out (one folder per model)")
    return earlier.get("benchmarks") or {}


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1f}"

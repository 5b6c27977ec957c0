"""`safer-vlm judge` and `safer-vlm judge-calibrate`.

judge: score every response in a JSONL file with the configured judge and write one verdict line
per input id, in input order, with the reward and its parts. Long runs resume: the judge's reply
cache (`cache_dir` in the judge YAML) makes a rerun skip everything already judged.

judge-calibrate: run the judge over responses with a human `label_unsafe` and report accuracy,
Cohen's kappa and the confusion matrix of its unsafe flag.

Scale: one process drives one endpoint at `concurrency` requests in flight; for more throughput
raise `concurrency` (the server is usually the limit) or split the input and run several processes
sharing one cache folder.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import typer

from safer_vlm.errors import SaferVLMError
from safer_vlm.judge.base import Verdict
from safer_vlm.judge.rubric import Rubric
from safer_vlm.sync_bridge import run_sync


def judge_command(
    judge: Path = typer.Option(..., "--judge", help="judge YAML (backend and its settings)"),
    input: Path = typer.Option(..., "--input", help="JSONL: id, question, images (relative), response"),
    output: Path = typer.Option(..., "--output", help="JSONL of verdicts, one per input id, in input order"),
    rubric: Path | None = typer.Option(None, "--rubric", help="rubric YAML (default: the built-in rubric)"),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace an existing output file"),
) -> None:
    """Judge every response in INPUT and write verdicts and rewards to OUTPUT."""
    from safer_vlm.judge.batch import read_judge_input, tally
    from safer_vlm.reward import compose_reward

    _refuse_overwrite(output, overwrite)
    cfg, rub = _load(judge, rubric)
    data = read_judge_input(input)
    for problem in data.problems:
        print(problem, file=sys.stderr)
    verdicts = _run_judge(cfg, rub, data.items, "judging")
    rows = []
    for item, verdict in zip(data.items, verdicts, strict=True):
        reward = compose_reward(verdict, rub)
        rows.append(
            {
                "id": item.sample.id,
                **verdict.to_dict(),
                "reward": reward.total if reward else None,
                "reward_parts": reward.parts if reward else {},
                "gated": reward.gated if reward else None,
            }
        )
    _write_jsonl_atomic(output, rows)
    counts = tally(verdicts)
    print(
        f"wrote {output}: {len(rows)} judged, ok {counts['ok']}, parse failures {counts['parse_failures']}, "
        f"errors {counts['errors']}, skipped input lines {len(data.problems)}"
    )


def calibrate_command(
    judge: Path = typer.Option(..., "--judge", help="judge YAML"),
    input: Path = typer.Option(..., "--input", help="JSONL like `judge` input plus a boolean label_unsafe"),
    rubric: Path | None = typer.Option(None, "--rubric", help="rubric YAML (default: the built-in rubric)"),
    json_out: Path | None = typer.Option(None, "--json", help="also write the report as JSON here"),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace an existing --json file"),
) -> None:
    """Compare the judge's unsafe flag with human labels: accuracy, Cohen's kappa, confusion matrix."""
    from rich.console import Console
    from rich.table import Table

    from safer_vlm.judge.agreement import Confusion
    from safer_vlm.judge.batch import read_judge_input, tally

    if json_out is not None:
        _refuse_overwrite(json_out, overwrite)
    cfg, rub = _load(judge, rubric)
    data = read_judge_input(input, check=_label_problem)
    for problem in data.problems:
        print(problem, file=sys.stderr)
    verdicts = _run_judge(cfg, rub, data.items, "calibrating")
    conf = Confusion()
    for record, verdict in zip(data.records, verdicts, strict=True):
        decision = rub.is_unsafe(verdict)  # the rubric's one unsafe rule, as training uses it
        if decision is not None:
            conf.add(decision, record["label_unsafe"])
    counts = tally(verdicts)
    report = {
        "judge": judge.name,
        "items": len(verdicts),
        "scored": conf.n,
        "parse_failures": counts["parse_failures"],
        "errors": counts["errors"],
        "skipped_input_lines": len(data.problems),
        "precision_unsafe": conf.tp / (conf.tp + conf.fp) if conf.tp + conf.fp else None,
        "recall_unsafe": conf.tp / (conf.tp + conf.fn) if conf.tp + conf.fn else None,
        **conf.to_dict(),
    }
    console = Console()
    table = Table(title=f"judge vs labels ({conf.n} scored of {len(verdicts)})")
    table.add_column("")
    table.add_column("label unsafe", justify="right")
    table.add_column("label safe", justify="right")
    table.add_row("judged unsafe", str(conf.tp), str(conf.fp))
    table.add_row("judged safe", str(conf.fn), str(conf.tn))
    console.print(table)

    def fmt(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.3f}"

    print(
        f"accuracy {fmt(conf.accuracy)}, kappa {fmt(conf.kappa)}, "
        f"precision(unsafe) {fmt(report['precision_unsafe'])}, recall(unsafe) {fmt(report['recall_unsafe'])}"
    )
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(
        f"scored {conf.n}, parse failures {counts['parse_failures']}, errors {counts['errors']}, "
        f"skipped input lines {len(data.problems)}"
    )


def _label_problem(record: dict[str, Any]) -> str | None:
    if not isinstance(record.get("label_unsafe"), bool):
        return f"field 'label_unsafe': expected true or false, got {record.get('label_unsafe')!r}"
    return None


def _refuse_overwrite(path: Path, overwrite: bool) -> None:
    if path.exists() and not overwrite:
        raise SaferVLMError(f"{path} already exists; pass --overwrite to replace it")
    _check_writable(path)


def _check_writable(path: Path) -> None:
    """Before any judging: the output can be written there (else the judged work would be lost)."""
    folder = path.parent
    while not folder.exists():
        folder = folder.parent
    if path.is_dir():
        raise SaferVLMError(f"--output {path} is a folder; give a file path")
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise SaferVLMError(f"--output {path}: cannot write in {folder} (permission denied or not a folder)")


def _write_jsonl_atomic(path: Path, rows: list[dict[str, Any]]) -> None:
    from safer_vlm.run_folder import write_text_atomic

    write_text_atomic(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))


def _load(judge_path: Path, rubric_path: Path | None) -> tuple[Any, Rubric]:
    from safer_vlm.config import load_config
    from safer_vlm.judge.config import load_judge_config

    rubric = load_config(Rubric, rubric_path) if rubric_path else Rubric.default()
    return load_judge_config(judge_path), rubric


def _cache_dirs(cfg: Any) -> list[str]:
    members = getattr(cfg, "members", None)
    if members is not None:
        return [d for m in members for d in _cache_dirs(m)]
    cache_dir = getattr(cfg, "cache_dir", None)
    return [str(cache_dir)] if cache_dir is not None else []


def _run_judge(cfg: Any, rubric: Rubric, items: list, label: str) -> list[Verdict]:
    """Judge items with a rich progress bar on stderr; raise one clear line if the endpoint is down."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from safer_vlm.judge.batch import judge_all, tally, unreachable_reason
    from safer_vlm.judge.factory import build_judge, max_in_flight

    judge = build_judge(cfg, rubric)

    async def go(advance: Any) -> list[Verdict]:
        try:
            return await judge_all(judge, items, cfg.batch_size, max_in_flight(cfg), advance)
        finally:
            closer = getattr(judge, "aclose", None)
            if closer is not None:
                await closer()

    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=False) as progress:
        task = progress.add_task(label, total=len(items))
        verdicts = run_sync(go(lambda k: progress.advance(task, k)))
    reason = unreachable_reason(verdicts)
    if reason is not None:
        done = tally(verdicts)["ok"] + tally(verdicts)["parse_failures"]
        caches = _cache_dirs(cfg)
        kept = (
            f"{done} of {len(items)} judged and cached in {', '.join(caches)}; rerun the same command to resume"
            if caches
            else f"{done} of {len(items)} judged but no cache_dir is set, so nothing was kept"
        )
        raise SaferVLMError(f"judge endpoint unreachable: {reason}. {kept}; no output written")
    report = getattr(judge, "agreement_report", None)
    if report is not None:
        for pair, stats in report().items():
            kappa = "n/a" if stats["kappa"] is None else f"{stats['kappa']:.3f}"
            agree = "n/a" if stats["accuracy"] is None else f"{stats['accuracy']:.3f}"
            print(
                f"member agreement {pair}: {stats['n']} items, unsafe-flag agreement {agree}, kappa {kappa}"
            )
    return verdicts


def register(app: typer.Typer) -> None:
    app.command("judge")(judge_command)
    app.command("judge-calibrate")(calibrate_command)

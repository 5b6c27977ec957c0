"""`safer-vlm eval` and `safer-vlm report`.

eval: answer every benchmark's items with the policy, judge them with one or more judges, and score
them under each benchmark's own protocol, the rubric and the reasoning trace (see
`safer_vlm.eval.evaluate`). Rerunning the same command resumes; adding a `--judge` re-judges the
stored answers without regenerating.

report: read one or more eval folders (and a `published:` YAML of quoted numbers) and write the
paper-shaped table as report.md, report.json and report.html.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from safer_vlm.errors import ConfigError


def eval_command(
    ctx: typer.Context,
    model: str = typer.Option(None, "--model", help="checkpoint folder, LoRA adapter folder, hub id or served model"),
    benchmark: list[str] = typer.Option(
        None, "--benchmark", help="NAME=PATH (or LABEL:NAME=PATH); NAME one of mm_safetybench, vlguard, "
        "vlsbench, mssbench, siuo, beavertails_v, spa_vl, jsonl; repeatable"),
    judge: list[Path] = typer.Option(None, "--judge", help="judge YAML; repeat for agreement (kappa)"),
    out: Path = typer.Option(None, "--out", help="output folder (resumable)"),
    config: Path = typer.Option(None, "--config", help="eval YAML (configs/eval_example.yaml); flags override it"),
    limit: int = typer.Option(None, "--limit", help="N items per benchmark, stratified by its reporting groups"),
    policy: str = typer.Option(None, "--policy", help="hf | vllm | openai"),
    temperature: float = typer.Option(None, "--temperature"),
    top_p: float = typer.Option(None, "--top-p"),
    max_new_tokens: int = typer.Option(None, "--max-new-tokens"),
    seed: int = typer.Option(None, "--seed"),
    samples_per_item: int = typer.Option(None, "--samples-per-item"),
    label: str = typer.Option(None, "--label", help="row name in reports"),
    overrides: list[str] = typer.Option(None, "--set", help="key.path=value override of the config"),
    protocol: str = typer.Option(None, "--protocol", help="auto (default) | official | rubric: each benchmark's "
                                 "own judge prompts and arithmetic, or our unified rubric view"),
    protocol_files: list[str] = typer.Option(
        None, "--protocol-files", help="NAME=PATH: the benchmark's own repository root holding its evaluation "
        "files (e.g. vlsbench=/src/VLSBench); repeatable"),
    format_instruction: str = typer.Option(None, "--format-instruction",
                                           help="on | off: append our <think>/<answer> instruction (default off "
                                           "under the official protocol, on under rubric)"),
    allow_missing_images: bool = typer.Option(False, "--allow-missing-images",
                                              help="score a benchmark whose image folders are missing (recorded)"),
) -> None:
    """Score a model on safety benchmarks: protocol, rubric and reasoning-trace safety, by category."""
    from safer_vlm.config import load_config
    from safer_vlm.eval.config import EvalConfig
    from safer_vlm.eval.evaluate import run_eval

    if config is None:
        missing = [flag for flag, value in (("--model", model), ("--benchmark", benchmark), ("--judge", judge),
                                            ("--out", out)) if not value]
        if missing:  # a usage error (usage line + one Error: line, exit 2), like any other missing option
            ctx.fail(f"missing {', '.join(missing)} (or give them in --config FILE)")
    flags = {  # over the YAML, under --set; None = not given
        "model": str(Path(model).absolute()) if model and Path(model).exists() else model,
        "out": str(out.absolute()) if out else None, "limit": limit, "policy": policy, "model_label": label,
        "protocol": protocol, "format_instruction": format_instruction,
        "allow_missing_images": allow_missing_images or None,
        "benchmarks": _benchmark_specs(benchmark) if benchmark else None,
        "protocol_files": _protocol_files(protocol_files or []),
        "judges": [str(j.absolute()) for j in judge] if judge else None,
        "sampling": {"temperature": temperature, "top_p": top_p, "max_new_tokens": max_new_tokens, "seed": seed,
                     "samples_per_item": samples_per_item},
    }
    cfg = load_config(EvalConfig, config, overrides, flags=flags, source="eval flags")
    try:
        run_eval(cfg)
    except KeyboardInterrupt:
        _interrupted(cfg.out)
    print(f"wrote {cfg.out / 'results.json'}; next: safer-vlm report {cfg.out}")


def _benchmark_specs(values: list[str]) -> list[dict[str, Any]]:
    """`--benchmark NAME=PATH` or `LABEL:NAME=PATH` -> EvalConfig.benchmarks entries."""
    specs = []
    for raw in values:
        if "=" not in raw:
            raise ConfigError(f"--benchmark {raw!r} must look like NAME=PATH (e.g. vlguard=/data/VLGuard)")
        name, path = raw.split("=", 1)
        label = None
        if ":" in name:  # LABEL:NAME=PATH, to run one protocol on two folders
            label, name = name.split(":", 1)
        specs.append({"name": name, "path": str(Path(path).absolute()), "label": label})
    return specs


def _protocol_files(values: list[str]) -> dict[str, str]:
    """`--protocol-files NAME=PATH` -> {NAME: absolute PATH}; merged key by key into the YAML's."""
    found = {}
    for raw in values:
        if "=" not in raw:
            raise ConfigError(f"--protocol-files {raw!r} must look like NAME=PATH (e.g. vlsbench=/src/VLSBench)")
        name, path = raw.split("=", 1)
        found[name] = str(Path(path).absolute())
    return found


def _interrupted(out: Path) -> None:
    """Ctrl-C: what is saved, and the command that resumes (the same one; stored answers are reused)."""
    import shlex
    import sys

    from safer_vlm.eval.cache import saved_summary

    saved = saved_summary(out) or [f"nothing yet in {out}"]
    command = " ".join(shlex.quote(a) for a in ["safer-vlm", *sys.argv[1:]])
    print("interrupted; saved so far (flushed after every batch):\n  " + "\n  ".join(saved)
          + f"\nresume with the same command: {command}", file=sys.stderr)
    raise typer.Exit(130)


def report_command(
    runs: list[Path] = typer.Argument(..., help="eval output folders (one row each)"),
    out: Path = typer.Option(None, "--out", help="where report.{md,json,html} go; default the first folder"),
    published: list[Path] = typer.Option(
        None, "--published", help="published-numbers YAML (quoted rows); default safer_vlm/eval/published.yaml"),
    no_published: bool = typer.Option(False, "--no-published", help="show measured rows only"),
) -> None:
    """The paper-shaped table (markdown, JSON, HTML with plots) from one or more eval folders."""
    from safer_vlm.eval.report import default_published, write_report

    pub = [] if no_published else (published or default_published())
    paths = write_report(runs, out or runs[0], pub)
    print("wrote " + ", ".join(str(p) for p in paths))


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_command)
    app.command("report")(report_command)

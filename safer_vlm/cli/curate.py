"""`safer-vlm curate --config FILE [--set key=value ...]`: build a QI-Safe training set.

Loads the configured releases, validates them, removes duplicates and evaluation overlap, scores
every remaining prompt with K policy answers judged under the rubric, and keeps the QI-Box prompts,
balanced by category. Rerunning with the same config resumes; see `safer_vlm.curate.pipeline`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer


def curate_command(
    config: Path = typer.Option(..., "--config", "-c", help="curation YAML (CurateConfig)"),
    overrides: list[str] = typer.Option([], "--set", help="override a key: --set qibox.k=8 (repeatable)"),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="replace results in output_dir made with a different config"
    ),
) -> None:
    """Dedup, decontaminate and QI-Box-select a training pool; resumable."""
    from safer_vlm.config import load_config
    from safer_vlm.curate.config import CurateConfig
    from safer_vlm.curate.pipeline import OutputDirConflict, run_curation

    cfg = load_config(CurateConfig, config, overrides)
    try:
        run_curation(cfg, overwrite=overwrite)
    except OutputDirConflict as exc:
        if overwrite or not _may_ask():
            raise
        typer.echo(str(exc), err=True)
        if not typer.confirm("Overwrite those results?", default=False):
            raise typer.Abort() from None
        run_curation(cfg, overwrite=True)


def _may_ask() -> bool:
    """A person is at the terminal and this is the only process (N processes cannot all prompt)."""
    from safer_vlm.distributed import env_ranks

    return sys.stdin.isatty() and env_ranks().world == 1


def register(app: typer.Typer) -> None:
    app.command("curate")(curate_command)

"""`safer-vlm train --config FILE [--set k=v ...] [--resume] [--overwrite]`: safety-aware GRPO."""

from __future__ import annotations

from pathlib import Path

import typer


def train_command(
    config: Path = typer.Option(..., "--config", help="training config YAML (see configs/)"),
    set_: list[str] = typer.Option([], "--set", help="override a config key: key.path=value (repeatable)"),
    resume: bool = typer.Option(False, "--resume", help="continue from the last checkpoint in the run folder"),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace the run in this folder (removes only what it wrote)"),
) -> None:
    """Run safety-aware GRPO from a config; writes a checkpoint, the config and metrics.jsonl."""
    from safer_vlm.config import load_config
    from safer_vlm.train.config import TrainConfig
    from safer_vlm.train.grpo import train

    cfg = load_config(TrainConfig, config, set_)
    train(cfg, resume=resume, overwrite=overwrite)


def register(app: typer.Typer) -> None:
    app.command("train")(train_command)

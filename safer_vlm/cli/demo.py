"""`safer-vlm demo [--config FILE] [--set k=v ...] [--overwrite] [--ablation]`."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        config: Path | None = typer.Option(None, "--config", help="demo config YAML (default: built-in demo)"),
        set_: list[str] = typer.Option([], "--set", help="override a config key: key.path=value (repeatable)"),
        overwrite: bool = typer.Option(False, "--overwrite", help="replace the run in this folder (removes only what it wrote)"),
        ablation: bool = typer.Option(
            False, "--ablation",
            help="run plain GRPO and each reflection group policy over several seeds (config section "
            "`ablation`) and write a side-by-side table to ablation.output_dir",
        ),
    ) -> None:
        """Train the tiny model on the safety gym with GRPO and report held-out reward before and after."""
        from safer_vlm.demo.config import load_demo_config

        cfg = load_demo_config(config, set_)
        if ablation:
            from safer_vlm.demo.ablation import run_ablation

            run_ablation(cfg, overwrite=overwrite)
        else:
            from safer_vlm.demo.run import run_demo

            run_demo(cfg, overwrite=overwrite)

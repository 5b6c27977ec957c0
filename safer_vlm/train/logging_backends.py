"""Metric backends next to `metrics.jsonl`: TensorBoard and wandb (offline unless WANDB_MODE says
otherwise), plus the run folder's record of package versions.

The backends are transformers' own callbacks, so they receive exactly the dict every TRL log step
produces: loss, grad norm, KL, `rewards/<criterion|penalty_*|safety_gate>/mean`, and the rollout and
judge metrics our reward function logs. Only the main process writes.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

TENSORBOARD_DIR = "tensorboard"
VERSIONS_NAME = "versions.json"
PACKAGES = ("safer-vlm", "torch", "transformers", "trl", "peft", "accelerate", "datasets", "tokenizers",
            "pydantic", "tensorboard", "wandb", "vllm", "deepspeed")


def backend_callbacks(report_to: list[str], run_dir: Path, project: str = "safer-vlm", main: bool = True) -> list[Any]:
    """TrainerCallbacks writing under `run_dir` for each named backend (a ConfigError if one is missing,
    on every process); on a process other than the main one, none (a SummaryWriter writes its event
    file as soon as it is made)."""
    from safer_vlm.errors import ConfigError

    callbacks: list[Any] = []
    for name in report_to:
        if name == "tensorboard":
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                raise ConfigError(
                    "logging.report_to has tensorboard but it is not installed: pip install 'safer-vlm[gpu]'"
                ) from None
            from transformers.integrations import TensorBoardCallback

            if main:
                callbacks.append(TensorBoardCallback(tb_writer=SummaryWriter(log_dir=str(run_dir / TENSORBOARD_DIR))))
        elif name == "wandb":
            try:
                import wandb  # noqa: F401
            except ImportError:
                raise ConfigError("logging.report_to has wandb but it is not installed: pip install wandb") from None
            from transformers.integrations import WandbCallback

            if not main:
                continue
            os.environ.setdefault("WANDB_MODE", "offline")
            os.environ.setdefault("WANDB_DIR", str(run_dir))
            os.environ.setdefault("WANDB_PROJECT", project)
            callbacks.append(WandbCallback())
        else:
            raise ConfigError(f"logging.report_to: unknown backend {name!r} (tensorboard | wandb)")
    return callbacks


def package_versions() -> dict[str, Any]:
    """Installed versions of the packages a run depends on (None when absent), Python and CUDA."""
    from importlib import metadata

    out: dict[str, Any] = {"python": platform.python_version(), "platform": platform.platform()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    try:
        import torch

        out["cuda"] = torch.version.cuda
        out["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except ImportError:
        pass
    return out


def write_versions(run_dir: Path) -> Path:
    """`<run>/versions.json`: what produced the run, beside its resolved `config.yaml`."""
    path = run_dir / VERSIONS_NAME
    path.write_text(json.dumps(package_versions(), indent=1) + "\n", encoding="utf-8")
    return path

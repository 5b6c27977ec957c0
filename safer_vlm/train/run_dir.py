"""The run folder: one config per folder, so results are never mixed or overwritten silently."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml

from safer_vlm.errors import ConfigError

CONFIG_NAME = "config.yaml"


def config_dict(cfg) -> dict:
    """The resolved config as plain data (what is written to and compared with the run folder)."""
    return json.loads(cfg.model_dump_json())


def prepare_run_dir(cfg, run_dir: Path, *, resume: bool = False, overwrite: bool = False) -> Path:
    """Create `run_dir` for `cfg`, or reuse it.

    A non-empty folder that is not a run folder (no config.yaml) is always refused, so `--overwrite`
    can never delete a user's files. A run folder written by a different config is refused unless
    `overwrite`; with `resume`,
    the folder must hold the same config. Without `resume`, an earlier run of the same config is
    replaced (it is reproducible from that config)."""
    run_dir = Path(run_dir)
    wanted = config_dict(cfg)
    saved_path = run_dir / CONFIG_NAME
    non_empty = run_dir.is_dir() and any(run_dir.iterdir())
    if non_empty:
        saved = None
        if saved_path.is_file():
            saved = yaml.safe_load(saved_path.read_text(encoding="utf-8"))
        same = saved == wanted
        if saved is None:
            raise ConfigError(
                f"{run_dir} is not empty and holds no {CONFIG_NAME}: it is not a safer-vlm run folder, "
                "so nothing in it is replaced; choose another output_dir"
            )
        if resume:
            if not same:
                raise ConfigError(
                    f"{run_dir}: cannot resume, the folder was written by a different config "
                    f"(compare {saved_path}); use the same config or a new output_dir"
                )
            return run_dir
        if not same and not overwrite:
            raise ConfigError(
                f"{run_dir} is not empty and was written by a different config; choose another output_dir "
                "or pass --overwrite to replace it"
            )
        shutil.rmtree(run_dir)
    elif resume:
        raise ConfigError(f"{run_dir}: nothing to resume (no run folder with a config)")
    run_dir.mkdir(parents=True, exist_ok=True)
    saved_path.write_text(yaml.safe_dump(wanted, sort_keys=False), encoding="utf-8")
    return run_dir

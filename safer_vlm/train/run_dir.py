"""The training run folder, claimed through `safer_vlm.run_folder` (manifest, refusals, --overwrite).

One config per folder, so results are never mixed; a folder holding a run (finished or partial) is
never replaced without `--overwrite`, which removes only the entries below; `--resume` needs the
same config. The resolved config is also written as `config.yaml` (eval reads it to find the
training data)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import yaml

from safer_vlm.run_folder import Claim, claim_folder, write_text_atomic

CONFIG_NAME = "config.yaml"

#: Every top-level entry `train` (and the demo) writes in its run folder: what --overwrite removes.
RUN_ENTRIES = (
    CONFIG_NAME, "metrics.jsonl", "versions.json", "tiny_model", "gym", "sft_model", "reference_policy",
    "checkpoints", "final", "trajectories.jsonl", "trajectories.html", "tensorboard", "wandb",
)
#: ... and what the demo (one arm, or the ablation's root) writes besides.
DEMO_ENTRIES = RUN_ENTRIES + ("summary.json", "report.md", "reward_curve.png", "heldout_curves.png")


@dataclass(frozen=True)
class RunFolder:
    """How a command claims its run folder: the command named in the manifest, whether an
    interrupted run continues with --resume, and the entries --overwrite may remove."""

    command: str = "train"
    can_resume: bool = True
    entries: tuple[str, ...] = RUN_ENTRIES


TRAIN_FOLDER = RunFolder()
#: The demo (and each ablation run) starts over rather than resumes; it writes its report files too.
DEMO_FOLDER = RunFolder("demo", can_resume=False, entries=DEMO_ENTRIES)


def config_dict(cfg) -> dict:
    """The resolved config as plain data (what is written to and compared with the run folder)."""
    return json.loads(cfg.model_dump_json())


def claim_run_dir(
    cfg, run_dir: Path, *, resume: bool = False, overwrite: bool = False, command: str = "train",
    can_resume: bool = True, entries: tuple[str, ...] = RUN_ENTRIES,
) -> Claim:
    """Claim `run_dir` for `cfg` (see `safer_vlm.run_folder.claim_folder` for the rules) and write
    its `config.yaml`."""
    wanted = config_dict(cfg)
    if resume:
        _adopt_legacy_run(Path(run_dir), command, wanted, entries)
    claim = claim_folder(
        Path(run_dir), command, wanted, entries, resume=resume, overwrite=overwrite, can_resume=can_resume
    )
    if not claim.existing:
        write_text_atomic(claim.path / CONFIG_NAME, yaml.safe_dump(wanted, sort_keys=False))
    return claim


def _adopt_legacy_run(run_dir: Path, command: str, wanted: dict, entries: tuple[str, ...]) -> None:
    """A run folder written before manifests existed, holding this very config in `config.yaml`, is
    given its manifest so `--resume` continues it (resuming deletes nothing; --overwrite of such a
    folder stays refused until it has one)."""
    from safer_vlm.run_folder import MANIFEST_NAME, write_json_atomic

    saved = run_dir / CONFIG_NAME
    if (run_dir / MANIFEST_NAME).exists() or not saved.is_file():
        return
    try:
        same = yaml.safe_load(saved.read_text(encoding="utf-8")) == wanted
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return
    if same:
        present = [name for name in entries if (run_dir / name).exists()]
        write_json_atomic(run_dir / MANIFEST_NAME, {"command": command, "config": wanted, "entries": present,
                                                    "status": "partial", "adopted": True}, indent=2)


def prepare_run_dir(cfg, run_dir: Path, *, resume: bool = False, overwrite: bool = False) -> Path:
    """`claim_run_dir` for callers that need only the folder (the demo's ablation root)."""
    return claim_run_dir(
        cfg, run_dir, resume=resume, overwrite=overwrite, command="demo", can_resume=False, entries=DEMO_ENTRIES
    ).path

"""`accelerate launch --num_processes 2 --cpu -m safer_vlm.cli train`: both ranks finish, with the
safety-aware rollout and the judge on every rank; one checkpoint and one metrics row per step."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.train.helpers import write_train_config

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_two_cpu_processes_train_to_one_checkpoint(tmp_path, gym_dir, gym_model_dir):
    accelerate = shutil.which("accelerate", path=str(Path(sys.executable).parent)) or shutil.which("accelerate")
    assert accelerate, "accelerate's launcher is installed with the package"
    config = write_train_config(tmp_path, gym_dir, gym_model_dir, save_steps=2, save_total_limit=3)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [accelerate, "launch", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
         "--dynamo_backend", "no", "--cpu", "-m", "safer_vlm.cli", "train", "--config", str(config)],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]  # every rank exited cleanly
    run = tmp_path / "run"
    assert (run / "final" / "config.json").is_file() and (run / "final" / "model.safetensors").is_file()
    assert sorted(p.name for p in (run / "checkpoints").glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-3"]
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    trained = [r for r in rows if "loss" in r and "train_runtime" not in r]
    assert [r["step"] for r in trained] == [1, 2, 3]  # one row per step, not one per rank
    assert all("rollout/reflection_rate" in r and "rewards/safety/mean" in r for r in trained)
    assert proc.stdout.count("checkpoint: ") == 1  # only the main process exports and reports

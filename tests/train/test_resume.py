"""`safer-vlm train --resume` continues a killed run from its last checkpoint and finishes it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from safer_vlm.cli import main
from tests.train.helpers import write_train_config


def _config(tmp_path: Path, gym_dir: Path, gym_model_dir: Path) -> Path:
    """30 steps with a checkpoint every step, so a kill lands between checkpoints."""
    return write_train_config(
        tmp_path, gym_dir, gym_model_dir, learning_rate=1e-4, max_steps=30, beta=0.0,
        max_completion_length=12, save_steps=1, save_total_limit=2,
    )


@pytest.mark.slow
def test_killed_run_resumes_to_the_end(tmp_path, gym_dir, gym_model_dir):
    config = _config(tmp_path, gym_dir, gym_model_dir)
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2]), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "safer_vlm.cli", "train", "--config", str(config)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while time.time() < deadline and not (run / "checkpoints" / "checkpoint-2").is_dir():
        if proc.poll() is not None:
            pytest.fail("training ended before it could be killed")
        time.sleep(0.2)
    time.sleep(0.3)  # let checkpoint-2 finish writing, then kill mid-run
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (run / "final").exists()

    main(["train", "--config", str(config), "--resume"])
    assert (run / "final" / "config.json").is_file()
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in rows]
    trained = [r["step"] for r in rows if "loss" in r and "train_runtime" not in r]
    assert trained == list(range(1, 31))  # every step once: steps redone after the kill are not doubled
    # resuming a finished run does nothing
    main(["train", "--config", str(config), "--resume"])
    after = [json.loads(x).get("step") for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert after == steps


def test_incomplete_checkpoints_are_skipped(tmp_path):
    from safer_vlm.train.trl_adapter import last_checkpoint

    for step, complete in ((2, True), (10, True), (12, False)):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        if complete:
            (folder / "trainer_state.json").write_text("{}")
    (tmp_path / "checkpoint-x").mkdir()
    assert last_checkpoint(tmp_path) == str(tmp_path / "checkpoint-10")
    assert last_checkpoint(tmp_path / "missing") is None

"""Ctrl-C ends a command with one line: what was saved and the exact command that resumes; exit 130.

Defects caught (issue 14): typer turned the KeyboardInterrupt into a silent exit 130 before our
line was printed, and with the OpenAI-compatible judge the interpreter's shutdown then printed
asyncio / aiohttp noise ("Event loop is closed", "Unclosed client session")."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from safer_vlm.cli import interrupt_line
from safer_vlm.run_folder import claim_folder
from tests.judge.fake_openai import FakeServer
from tests.train.helpers import write_train_config

REPO = Path(__file__).resolve().parents[2]


def test_sigint_during_training_says_what_was_saved_and_how_to_resume(tmp_path, gym_dir, gym_model_dir):
    server = FakeServer().start()
    try:
        config = write_train_config(tmp_path, gym_dir, gym_model_dir, max_steps=100, num_generations=2,
                                    per_device_train_batch_size=4, max_completion_length=4, beta=0.0, save_steps=1)
        cfg = yaml.safe_load(config.read_text())
        cfg["rollout"] = {"reflection": False}
        cfg["judge"] = {"backend": "openai_compat", "base_url": server.url, "model": "judge", "max_retries": 0}
        config.write_text(yaml.safe_dump(cfg))
        env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
        # A child inherits an ignored SIGINT, and Python then installs no KeyboardInterrupt handler:
        # in the full suite (not alone) training ran to its end and exited 0, so something earlier
        # leaves SIGINT ignored in this process. A user's shell gives the default disposition; so does this.
        proc = subprocess.Popen([sys.executable, "-m", "safer_vlm.cli", "train", "--config", str(config)],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        checkpoint = tmp_path / "run" / "checkpoints" / "checkpoint-1" / "trainer_state.json"
        deadline = time.time() + 180
        while not checkpoint.is_file() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.1)
        assert proc.poll() is None, "training ended before it could be interrupted"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        server.stop()
    assert proc.returncode == 130, err[-3000:]
    # transformers' own log lines aside (e.g. "[transformers] mtime may not be reliable ..." when two
    # checkpoints share an mtime), the interrupt prints one line and no traceback
    lines = [x for x in err.splitlines() if x.strip() and not x.startswith("[transformers]")]
    assert len(lines) == 1, err[-3000:]
    line = lines[0]
    assert line.startswith(f"interrupted: {tmp_path / 'run'} keeps what was saved (last checkpoint ")
    command = line.split("resume with: ", 1)[1]
    assert shlex.split(command) == ["safer-vlm", "train", "--config", str(config), "--resume"]


def test_the_interrupt_line_of_each_kind_of_command(tmp_path):
    claim_folder(tmp_path / "c", "curate", {}, (), can_resume=False, reuse_same_config=True)
    assert interrupt_line(["curate", "-c", "x.yaml"]).endswith("resume with the same command: safer-vlm curate -c x.yaml")
    claim_folder(tmp_path / "d", "demo", {}, (), can_resume=False)
    assert "cannot resume, start again with: safer-vlm demo --overwrite" in interrupt_line(["demo"])
    gone = claim_folder(tmp_path / "e", "train", {}, ())
    gone.abandon()  # interrupted during its first checks: the folder is gone, nothing was saved
    assert interrupt_line(["train", "--config", "t.yaml"]) == "interrupted: nothing was saved"

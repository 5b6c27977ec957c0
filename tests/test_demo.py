"""A very short demo run writes every artefact with the promised keys; configs/demo.yaml is the default."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_configs_demo_yaml_equals_builtin_defaults():
    from safer_vlm.demo import DemoConfig, load_demo_config

    assert load_demo_config(ROOT / "configs" / "demo.yaml", []) == DemoConfig()


@pytest.mark.slow
def test_short_demo_writes_all_files(tmp_path, capsys):
    from safer_vlm.cli import main

    out = tmp_path / "demo"
    main(
        [
            "demo",
            "--config", str(ROOT / "configs" / "demo.yaml"),
            "--set", f"output_dir={out}",
            "--set", "data.gym={seed: 0, n_train: 12, n_heldout: 6, image_size: 56}",
            "--set", "sft_warmstart.steps=2",
            "--set", "grpo.max_steps=2",
            "--set", "grpo.per_device_train_batch_size=8",
            "--set", "grpo.num_generations=4",
            "--set", "grpo.max_completion_length=12",
            "--set", "heldout.samples_per_item=1",
            "--set", "heldout.max_new_tokens=12",
        ]
    )
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("held-out reward ") and "->" in last and "(SFT " in last
    for name in ("config.yaml", "metrics.jsonl", "reward_curve.png", "report.md", "summary.json"):
        assert (out / name).is_file(), name
    assert (out / "final" / "model.safetensors").is_file()
    summary = json.loads((out / "summary.json").read_text())
    for key in ("heldout_reward_before", "heldout_reward_after_sft", "heldout_reward_after", "parse_failures"):
        assert key in summary
    for key in ("accuracy_before", "accuracy_after_sft", "accuracy_after"):
        assert set(summary[key]) == {"text", "image", "both", "benign", "all"}
    assert summary["grpo_steps"] == 2
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert any("rewards/safety/mean" in r for r in rows)

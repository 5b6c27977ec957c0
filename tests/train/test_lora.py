"""LoRA through peft: only adapter weights train (reflection on, beta > 0, reference = adapters off),
the CLI writes an adapter checkpoint, `--resume` continues it, and merged weights export."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from safer_vlm.cli import main
from safer_vlm.data.schema import read_samples
from safer_vlm.judge.rules import RuleJudge
from safer_vlm.judge.testing import ControlledUnsafeJudge
from safer_vlm.train.config import LoRASection, TrainConfig
from safer_vlm.train.lora import target_modules
from tests.train.helpers import write_train_config


def test_default_targets_leave_the_vision_tower_out():
    import re

    pattern = target_modules(LoRASection(enabled=True))
    assert re.fullmatch(pattern, "model.language_model.layers.0.self_attn.q_proj")
    assert re.fullmatch(pattern, "model.language_model.layers.1.mlp.down_proj")
    assert not re.fullmatch(pattern, "model.visual.blocks.0.mlp.down_proj")
    assert target_modules(LoRASection(enabled=True, train_vision=True)) == list(LoRASection().target_modules)


@pytest.mark.slow
def test_three_lora_steps_change_only_adapter_weights(tmp_path, gym_dir, gym_model_dir):
    from safer_vlm.models.loading import load_policy
    from safer_vlm.train.grpo import METRICS_NAME, export_policy, run_grpo

    cfg = TrainConfig.model_validate({
        "model": {"path": str(gym_model_dir)},
        "data": {"path": "unused.jsonl"},
        "rollout": {"reflection": True, "max_reflections": 2},
        "lora": {"enabled": True, "r": 4, "alpha": 8, "merge_on_export": True},
        "grpo": {
            "learning_rate": 1e-2, "num_generations": 4, "per_device_train_batch_size": 8,
            "gradient_accumulation_steps": 1, "max_steps": 3, "beta": 0.04, "max_completion_length": 12,
            "device": "cpu", "save_steps": 1000,
        },
    })
    samples = list(read_samples(gym_dir / "train.jsonl"))
    model, processor = load_policy(gym_model_dir, dtype="float32")
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    judge = ControlledUnsafeJudge(RuleJudge(cfg.rubric), cfg.rubric, fraction=0.5, group_size=4, reflection=True)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    trainer = run_grpo(cfg, run_dir, model, processor, samples, judge)

    assert trainer.ref_model is None  # the reference is the adapter-disabled policy, not a second copy
    assert not (run_dir / "reference_policy").exists()
    rows = [json.loads(x) for x in (run_dir / METRICS_NAME).read_text().splitlines()]
    steps = [r for r in rows if "loss" in r and "train_runtime" not in r]
    assert len(steps) == 3 and all(r["kl"] is not None for r in steps)
    assert any(r.get("rollout/reflection_rate", 0) > 0 for r in steps)

    peft_model = trainer.model
    after = dict(peft_model.named_parameters())
    adapters = [n for n in after if "lora_" in n]
    assert adapters and not any("visual" in n for n in adapters)
    changed_adapters = [n for n in adapters if "lora_B" in n and after[n].abs().sum() > 0]
    assert changed_adapters, "no adapter weight moved"
    base = {n.replace("base_model.model.", "").replace(".base_layer", ""): p
            for n, p in after.items() if "lora_" not in n}
    assert base.keys() == before.keys()
    for name, p in base.items():
        assert torch.equal(p, before[name]), f"base weight {name} changed"

    final = export_policy(cfg, peft_model, processor, tmp_path / "final")
    assert (final / "adapter_config.json").is_file() and (final / "adapter_model.safetensors").is_file()
    assert not (final / "model.safetensors").exists()
    merged, _ = load_policy(final / "merged", dtype="float32")  # merged weights load without peft
    name = "model.language_model.layers.0.self_attn.q_proj.weight"
    assert not torch.equal(dict(merged.named_parameters())[name], before[name])


@pytest.mark.slow
def test_cli_lora_writes_an_adapter_checkpoint_and_resumes(tmp_path, gym_dir, gym_model_dir):
    config = write_train_config(tmp_path, gym_dir, gym_model_dir, save_steps=1, save_total_limit=3)
    run = tmp_path / "run"
    args = ["train", "--config", str(config), "--set", "lora.enabled=true", "--set", "lora.r=4"]
    main(args)
    final = run / "final"
    assert (final / "adapter_config.json").is_file() and (final / "adapter_model.safetensors").is_file()
    assert (run / "checkpoints" / "checkpoint-2" / "adapter_model.safetensors").is_file()
    first = (final / "adapter_model.safetensors").read_bytes()

    # pretend the run was killed after step 2: resume continues from the adapter checkpoint
    shutil.rmtree(final)
    shutil.rmtree(run / "checkpoints" / "checkpoint-3")
    main([*args, "--resume"])
    assert (final / "adapter_config.json").is_file()
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "loss" in r and "train_runtime" not in r] == [1, 2, 3]
    assert (run / "checkpoints" / "checkpoint-2" / "video_preprocessor_config.json").is_file()
    # the resumed run restored adapter, optimizer and RNG from checkpoint-2: it ends where the uninterrupted run did
    assert (final / "adapter_model.safetensors").read_bytes() == first

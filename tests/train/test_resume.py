"""`safer-vlm train --resume` continues a killed run exactly: weights, optimizer, scheduler, RNG, data.

The defect these tests catch (issue 14): TRL checkpoints of Qwen2.5-VL are written by
`save_pretrained` under the checkpoint key names (`model.layers.*`, `visual.*`) while the Trainer
read them back with a raw `load_state_dict(strict=False)` under the module names
(`model.language_model.*`, `model.visual.*`): nothing matched, every weight stayed at its initial
value, and only a transformers warning said so. The step counter carried on, so a test of step
numbers passed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.train.helpers import write_train_config

REPO = Path(__file__).resolve().parents[2]
STEPS, KILL_AFTER = 6, 3  # checkpoint at step 3, killed as step 4 begins, resumed to step 6


@pytest.fixture(scope="module")
def warm_model_dir(tmp_path_factory, gym_dir, gym_model_dir) -> Path:
    """The gym's tiny model after a short format warm start, so the rule judge's rewards differ
    within a group and GRPO really moves the weights (from random init every reward is 0)."""
    from safer_vlm.data.schema import read_samples
    from safer_vlm.models.loading import load_policy
    from safer_vlm.train.config import SFTWarmstart
    from safer_vlm.train.grpo import save_policy
    from safer_vlm.train.sft import sft_warmstart

    model, processor = load_policy(gym_model_dir)
    samples = [s for s in read_samples(gym_dir / "train.jsonl") if s.split == "train"]
    sft_warmstart(model, processor, samples, SFTWarmstart(enabled=True, steps=60, batch_size=8), seed=0)
    return save_policy(model, processor, tmp_path_factory.mktemp("warm") / "model")


def _config(tmp_path: Path, gym_dir: Path, gym_model_dir: Path, name: str, lora: bool) -> Path:
    (tmp_path / name).mkdir()
    path = write_train_config(
        tmp_path / name, gym_dir, gym_model_dir, learning_rate=1e-3, max_steps=STEPS, beta=0.0,
        max_completion_length=32, num_generations=4, per_device_train_batch_size=8,
        save_steps=KILL_AFTER, save_total_limit=3,
    )
    if lora:
        cfg = yaml.safe_load(path.read_text())
        cfg["lora"] = {"enabled": True, "r": 4, "alpha": 8, "dropout": 0.0}
        path.write_text(yaml.safe_dump(cfg))
    return path


def _train(config: Path, *train_args: str, kill_at: int | None = None,
           dumps: dict[int, Path] | None = None) -> subprocess.CompletedProcess:
    probe: list[str] = []
    if kill_at is not None:
        probe += ["--kill-at", str(kill_at)]
    for step, path in (dumps or {}).items():
        probe += ["--dump", f"{step}:{path}"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "tests.train.resume_driver", *probe, "--", "train", "--config", str(config),
         *train_args],
        env=env, capture_output=True, text=True, timeout=600, cwd=REPO,
    )


def _tensors(path: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(path))


def _assert_equal(a: dict, b: dict, what: str) -> None:
    import torch

    assert a.keys() == b.keys(), what
    differ = [k for k in a if not torch.equal(a[k], b[k])]
    assert not differ, f"{what}: {len(differ)} tensors differ, e.g. {differ[:3]}"


def _check_exact_resume(tmp_path: Path, gym_dir: Path, gym_model_dir: Path, lora: bool) -> None:
    # the uninterrupted run, with the weights it holds after KILL_AFTER steps
    whole = _config(tmp_path, gym_dir, gym_model_dir, "whole", lora)
    done = _train(whole, dumps={0: tmp_path / "whole_at_0.safetensors", KILL_AFTER: tmp_path / "whole_at_k.safetensors"})
    assert done.returncode == 0, done.stderr[-3000:]
    # the same config, killed right after its checkpoint, then resumed
    cut = _config(tmp_path, gym_dir, gym_model_dir, "cut", lora)
    killed = _train(cut, kill_at=KILL_AFTER + 1)
    assert killed.returncode == -9, killed.stderr[-3000:]
    run = tmp_path / "cut" / "run"
    assert (run / "checkpoints" / f"checkpoint-{KILL_AFTER}" / "trainer_state.json").is_file()
    assert not (run / "final").exists()
    resumed = _train(cut, "--resume", dumps={KILL_AFTER: tmp_path / "resumed_at_k.safetensors"})
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "missing keys" not in resumed.stderr + resumed.stdout

    at_k = _tensors(tmp_path / "resumed_at_k.safetensors")
    initial = _tensors(tmp_path / "whole_at_0.safetensors")
    whole_at_k = _tensors(tmp_path / "whole_at_k.safetensors")
    trained = [k for k in whole_at_k if not (whole_at_k[k] == initial[k]).all()]
    assert trained, "the test's settings must change the weights in the first steps"
    # the first step after resuming starts from the checkpoint's weights, not the initial ones
    _assert_equal(at_k, _tensors(tmp_path / "whole_at_k.safetensors"), "weights at the first resumed step")
    if not lora:
        from transformers import AutoModelForImageTextToText

        ckpt = AutoModelForImageTextToText.from_pretrained(run / "checkpoints" / f"checkpoint-{KILL_AFTER}")
        _assert_equal(at_k, {k: v.contiguous() for k, v in ckpt.state_dict().items()}, "checkpoint vs resumed")
    name = "adapter_model.safetensors" if lora else "model.safetensors"
    _assert_equal(_tensors(run / "final" / name), _tensors(tmp_path / "whole" / "run" / "final" / name),
                  "final weights, resumed vs uninterrupted")

    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "loss" in r and "train_runtime" not in r] == list(range(1, STEPS + 1))
    again = _train(cut, "--resume")  # resuming a finished run does nothing
    assert again.returncode == 0 and "nothing to resume" in again.stdout


@pytest.mark.slow
def test_killed_full_run_resumes_bit_exact(tmp_path, gym_dir, warm_model_dir):
    _check_exact_resume(tmp_path, gym_dir, warm_model_dir, lora=False)


@pytest.mark.slow
def test_killed_lora_run_resumes_bit_exact(tmp_path, gym_dir, warm_model_dir):
    _check_exact_resume(tmp_path, gym_dir, warm_model_dir, lora=True)


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


def test_checkpoint_weights_load_under_the_modules_names(tmp_path, gym_model_dir):
    """Catches the key mismatch itself (fast): a `save_pretrained` checkpoint of Qwen2.5-VL, read back
    into a model whose weights were changed, restores every tensor exactly."""
    import torch

    from safer_vlm.models.loading import load_policy
    from safer_vlm.train.trl_adapter import load_full_weights

    model, _ = load_policy(gym_model_dir)
    model.save_pretrained(tmp_path / "ckpt", safe_serialization=True)
    saved = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    assert load_full_weights(model, tmp_path / "ckpt")
    _assert_equal({k: v for k, v in model.state_dict().items()}, saved, "restored weights")


def test_a_checkpoint_missing_a_trainable_weight_is_refused(tmp_path, gym_model_dir):
    """Catches a resume that warns and trains on (from initial values) when the checkpoint lacks weights."""
    from safetensors.torch import load_file, save_file

    from safer_vlm.models.loading import load_policy
    from safer_vlm.train.trl_adapter import ResumeError, load_full_weights

    model, _ = load_policy(gym_model_dir)
    model.save_pretrained(tmp_path / "ckpt", safe_serialization=True)
    path = tmp_path / "ckpt" / "model.safetensors"
    tensors = load_file(str(path))
    del tensors["model.layers.0.mlp.down_proj.weight"]
    save_file(tensors, str(path), metadata={"format": "pt"})
    with pytest.raises(ResumeError, match=r"cannot resume from .*ckpt: it holds no value for 1 of the \d+ trainable"):
        load_full_weights(model, tmp_path / "ckpt")


def test_an_adapter_that_does_not_match_is_refused(tmp_path, gym_model_dir):
    """Catches a LoRA resume whose adapter weights did not all come back from the checkpoint."""
    import torch
    from peft import get_peft_model

    from safer_vlm.models.loading import load_policy
    from safer_vlm.train.config import LoRASection
    from safer_vlm.train.lora import peft_config
    from safer_vlm.train.trl_adapter import ResumeError, check_adapter_restored

    model, _ = load_policy(gym_model_dir)
    model = get_peft_model(model, peft_config(LoRASection(enabled=True, r=4, alpha=8, dropout=0.0)))
    model.save_pretrained(tmp_path / "ckpt")
    check_adapter_restored(model, tmp_path / "ckpt")  # what was saved is what the model holds
    with torch.no_grad():
        next(p for n, p in model.named_parameters() if "lora_B" in n).add_(1.0)
    with pytest.raises(ResumeError, match="cannot resume"):
        check_adapter_restored(model, tmp_path / "ckpt")

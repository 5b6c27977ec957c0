"""Inside GRPO: the reference model (beta > 0) runs the policy's attention, per sub-model, and the HF
rollout samples each stage (originals, then every group's reflections) in one generate call."""

from __future__ import annotations

import pytest

from safer_vlm.data.schema import read_samples
from safer_vlm.judge.rules import RuleJudge
from safer_vlm.judge.testing import ControlledUnsafeJudge
from safer_vlm.train.config import TrainConfig


def _cfg(tmp_path, gym_model_dir, **grpo):
    return TrainConfig.model_validate({
        "model": {"path": str(gym_model_dir)},
        "data": {"path": "unused.jsonl"},
        "rollout": {"reflection": True, "max_reflections": 2},
        "grpo": {
            "learning_rate": 1e-4, "num_generations": 4, "per_device_train_batch_size": 8,
            "gradient_accumulation_steps": 1, "max_steps": 2, "beta": 0.01, "max_completion_length": 8,
            "device": "cpu", "save_steps": 1000, **grpo,
        },
        "output_dir": str(tmp_path / "run"),
    })


@pytest.mark.slow
def test_reference_model_gets_the_policys_attention_and_reflections_are_one_call(
    tmp_path, gym_dir, gym_model_dir, monkeypatch
):
    from safer_vlm.generation.hf_generator import HFGenerator
    from safer_vlm.models.attention import PADSAFE, attn_of
    from safer_vlm.models.loading import load_policy
    from safer_vlm.train.grpo import run_grpo

    cfg = _cfg(tmp_path, gym_model_dir)
    attn = {"text_config": PADSAFE, "vision_config": "eager"}
    model, processor = load_policy(gym_model_dir, dtype="float32", attn_implementation=attn)
    calls: list[int] = []
    original = HFGenerator._generate_batch

    def counted(self, chats):
        calls.append(len(chats))
        return original(self, chats)

    monkeypatch.setattr(HFGenerator, "_generate_batch", counted)
    judge = ControlledUnsafeJudge(RuleJudge(cfg.rubric), cfg.rubric, fraction=0.5, group_size=4, reflection=True)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    trainer = run_grpo(cfg, run_dir, model, processor, list(read_samples(gym_dir / "train.jsonl")), judge)

    assert attn_of(trainer.ref_model) == attn  # not flattened to the top-level config's "sdpa"
    assert attn_of(trainer.model) == attn
    # per step: 8 originals in one call, then 2 prompts x 2 flagged answers reflected in one call
    assert calls == [8, 4, 8, 4]


@pytest.mark.slow
def test_rollout_batch_size_splits_generate_calls(tmp_path, gym_dir, gym_model_dir, monkeypatch):
    from safer_vlm.generation.hf_generator import HFGenerator
    from safer_vlm.models.loading import load_policy
    from safer_vlm.train.grpo import run_grpo

    cfg = _cfg(tmp_path, gym_model_dir, rollout_batch_size=4, beta=0.0, max_steps=1, cache_implementation="static")
    model, processor = load_policy(gym_model_dir, dtype="float32")
    calls: list[tuple[int, str | None]] = []
    original = HFGenerator._generate_batch

    def counted(self, chats):
        calls.append((len(chats), self._sampling_config.cache_implementation))
        return original(self, chats)

    monkeypatch.setattr(HFGenerator, "_generate_batch", counted)
    judge = ControlledUnsafeJudge(RuleJudge(cfg.rubric), cfg.rubric, fraction=0.5, group_size=4, reflection=True)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    run_grpo(cfg, run_dir, model, processor, list(read_samples(gym_dir / "train.jsonl")), judge)
    assert calls == [(4, "static"), (4, "static"), (4, "static")]

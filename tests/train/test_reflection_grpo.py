"""GRPO through TRL with the safety-aware rollout on: corrections train on the original prompt, the
reward functions see which answers are corrections, and the loss stays finite."""

from __future__ import annotations

import json
import math

import pytest

from safer_vlm.data.schema import read_samples
from safer_vlm.judge.rules import RuleJudge
from safer_vlm.judge.testing import ControlledUnsafeJudge
from safer_vlm.train import trl_adapter
from safer_vlm.train.config import TrainConfig


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["replace", "contrast"])
def test_reflection_inside_grpo(tmp_path, gym_dir, gym_model_dir, monkeypatch, policy):
    from safer_vlm.generation.base import GenRequest
    from safer_vlm.generation.messages import build_messages, processor_inputs
    from safer_vlm.models.loading import load_policy
    from safer_vlm.train.grpo import METRICS_NAME, TRAJECTORIES_NAME, make_group_rollout, run_grpo

    cfg = TrainConfig.model_validate(
        {
            "model": {"path": str(gym_model_dir)},
            "data": {"path": "unused.jsonl"},
            "output_dir": str(tmp_path / "run"),
            "rollout": {"reflection": True, "policy": policy, "max_reflections": 2},
            "trajectories": {"every_steps": 1, "groups_per_step": 2},
            "grpo": {
                "learning_rate": 1e-2, "num_generations": 4, "per_device_train_batch_size": 8,
                "gradient_accumulation_steps": 1, "max_steps": 2, "beta": 0.0,
                "max_completion_length": 12, "device": "cpu", "save_steps": 1000,
            },
        }
    )
    samples = list(read_samples(gym_dir / "train.jsonl"))
    model, processor = load_policy(gym_model_dir, dtype="float32")
    judge = ControlledUnsafeJudge(RuleJudge(cfg.rubric), cfg.rubric, fraction=0.5, group_size=4, reflection=True)
    inner = make_group_rollout(cfg, judge)
    results = []

    def spy(generator, batch, n):
        results.append(inner(generator, batch, n))
        return results[-1]

    received: list[dict] = []
    real_make = trl_adapter.make_structured_reward

    def make_spy():
        func = real_make()

        def structured_reward(prompts, completions, **kwargs):
            received.append(kwargs)
            return func(prompts, completions, **kwargs)

        structured_reward.__name__ = "structured_reward"
        return structured_reward

    monkeypatch.setattr(trl_adapter, "make_structured_reward", make_spy)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    run_grpo(cfg, run_dir, model, processor, samples, judge, group_rollout=spy)
    assert results

    # Reflection happened, and every correction is trained on its original prompt's ids.
    result = results[-1]
    corrected = [m for g in result.groups for m in g.members if m.reflected]
    assert corrected, "the controlled judge flags half of each group: corrections must join the groups"
    for group in result.groups:
        sample = group.sample
        enc = processor_inputs(processor, [build_messages(GenRequest(sample=sample))])
        expected = enc["input_ids"][0][enc["attention_mask"][0].bool()].tolist()
        for row in result.rows:
            if row.group_index == group.sample_index:
                assert row.prompt_ids == expected
                if row.reflected:
                    assert all(math.isnan(x) for x in row.logprobs)
                    assert group.by_uid(row.uid).reflection_prompt  # sampled under the reflection context

    # The reward functions received the rollout's rows (rewards and `reflected` flags), in TRL's order.
    assert len(received) == len(results) and all(trl_adapter.ROW_KEY in kw for kw in received)
    assert received[-1][trl_adapter.ROW_KEY] == result.rows
    flags = [row.reflected for kw in received for row in kw[trl_adapter.ROW_KEY]]
    assert any(flags) and not all(flags)
    if policy == "contrast":  # each unsafe original trains beside its correction
        for group in result.groups:
            for m in group.members:
                if m.reflected:
                    assert group.originals[m.corrects] in group.members

    # The loss is finite, and the rollout's own metrics reached TRL's log.
    rows = [json.loads(x) for x in (run_dir / METRICS_NAME).read_text().splitlines()]
    logged = [r for r in rows if "loss" in r and "reward" in r]
    assert logged and all(r["loss"] is not None and math.isfinite(r["loss"]) for r in logged)
    assert logged[0]["rollout/originals_unsafe_rate"] == pytest.approx(0.5)
    assert logged[0]["rollout/reflection_rate"] > 0
    assert (run_dir / TRAJECTORIES_NAME).is_file()


@pytest.mark.slow
def test_batch_of_only_corrections_with_importance_sampling_correction(tmp_path, gym_dir, gym_model_dir, monkeypatch):
    """Issue 11, finding 5: with `vllm_importance_sampling_correction` on (both shipped GPU configs)
    a step whose every answer is a correction used to give TRL `logprobs=None`, and TRL raised
    TypeError on `old - None`. TRL's vLLM branch runs here with the engine stubbed out: rollouts come
    from transformers, the importance-sampling arithmetic is TRL's own."""
    from types import SimpleNamespace

    from safer_vlm.generation.hf_generator import HFGenerator
    from safer_vlm.models.loading import load_policy
    from safer_vlm.train import grpo
    from safer_vlm.train.grpo import METRICS_NAME, make_group_rollout, run_grpo

    cfg = TrainConfig.model_validate(
        {
            "model": {"path": str(gym_model_dir)},
            "data": {"path": "unused.jsonl"},
            "output_dir": str(tmp_path / "run"),
            "rollout": {"reflection": True, "policy": "replace", "max_reflections": 2},
            "grpo": {
                "learning_rate": 1e-3, "num_generations": 2, "per_device_train_batch_size": 4,
                "gradient_accumulation_steps": 1, "max_steps": 1, "beta": 0.0,
                "max_completion_length": 8, "device": "cpu", "save_steps": 1000,
                "vllm_importance_sampling_correction": True,
            },
        }
    )
    samples = list(read_samples(gym_dir / "train.jsonl"))
    model, processor = load_policy(gym_model_dir, dtype="float32")
    # every original unsafe, every correction safe: under `replace` the batch is only corrections
    judge = ControlledUnsafeJudge(RuleJudge(cfg.rubric), cfg.rubric, fraction=1.0, group_size=2, reflection=True)
    inner = make_group_rollout(cfg, judge)
    results = []

    def spy(generator, batch, n):
        results.append(inner(generator, batch, n))
        return results[-1]

    def hf_factory(proc, grpo=None):
        def factory(model, trainer):
            return HFGenerator(model, proc, max_new_tokens=trainer.max_completion_length,
                               temperature=1.0, generation_config=trainer.generation_config, batch_size=4)
        return factory

    real_make_trainer = trl_adapter.make_trainer

    def make_trainer_with_vllm_branch(*args, **kwargs):
        trainer = real_make_trainer(*args, **kwargs)
        trainer.use_vllm = True  # TRL's vLLM code paths, with the engine itself stubbed
        trainer.vllm_mode = "server"
        trainer.vllm_importance_sampling_correction = True
        trainer.vllm_generation = SimpleNamespace(sync_weights=lambda: None)
        trainer._last_loaded_step = -1
        return trainer

    monkeypatch.setattr(grpo, "generator_factory", hf_factory)
    monkeypatch.setattr(trl_adapter, "make_trainer", make_trainer_with_vllm_branch)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    trainer = run_grpo(cfg, run_dir, model, processor, samples, judge, group_rollout=spy)
    assert trainer.state.global_step == 1
    assert all(row.reflected for row in results[-1].rows)
    rows = [json.loads(x) for x in (run_dir / METRICS_NAME).read_text().splitlines()]
    logged = [r for r in rows if "loss" in r]
    assert logged and math.isfinite(logged[0]["loss"])
    assert logged[0]["sampling/importance_sampling_ratio/mean"] == pytest.approx(1.0)  # NaN rows: ratio 1

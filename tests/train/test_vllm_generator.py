"""TRLVLLMGenerator's plumbing, against a stand-in for TRL's `vllm_generation` (no vLLM here): prompts
are tokenised as the HF path tokenises them, repeated n times with their images, and the flat
completions are regrouped per request with the sampled token's logprob."""

from __future__ import annotations

import pytest

from safer_vlm.data.schema import read_samples
from safer_vlm.errors import ConfigError
from safer_vlm.generation.base import GenRequest
from safer_vlm.train.config import GRPOSection
from safer_vlm.train.trl_adapter import TRLVLLMGenerator, check_vllm_rollout


class FakeVLLMGeneration:
    """Records what it was asked; answers each prompt copy with distinct token ids."""

    def __init__(self) -> None:
        self.calls = []

    def generate(self, prompts, images, num_generations):
        self.calls.append((prompts, images, num_generations))
        completions = [[10 + k, 11 + k] for k in range(len(prompts))]
        logprobs = [[[-0.1 * (k + 1)], [-0.2]] for k in range(len(prompts))]
        return prompts, completions, logprobs, None


class FakeTrainer:
    def __init__(self) -> None:
        self.vllm_generation = FakeVLLMGeneration()


def test_requests_are_repeated_and_regrouped(gym_dir, gym_model_dir):
    from safer_vlm.generation.messages import build_messages, processor_inputs
    from safer_vlm.models.loading import load_processor

    processor = load_processor(gym_model_dir)
    samples = list(read_samples(gym_dir / "train.jsonl"))[:2]
    trainer = FakeTrainer()
    out = TRLVLLMGenerator(trainer, processor).generate([GenRequest(s) for s in samples], n=3)

    prompts, images, n = trainer.vllm_generation.calls[0]
    assert n == 3 and len(prompts) == 6 and len(images) == 6
    for i, sample in enumerate(samples):
        enc = processor_inputs(processor, [build_messages(GenRequest(sample))])
        expected = enc["input_ids"][0][enc["attention_mask"][0].bool()].tolist()
        assert prompts[3 * i : 3 * i + 3] == [expected] * 3  # image tokens expanded, as TRL expects
        assert len(images[3 * i]) == len(sample.images)
        assert [g.prompt_ids for g in out[i]] == [expected] * 3
    assert [len(group) for group in out] == [3, 3]
    assert out[1][0].completion_ids == [13, 14]
    assert out[1][0].logprobs == pytest.approx([-0.4, -0.2])
    assert TRLVLLMGenerator(trainer, processor).generate([], n=2) == []


def test_server_mode_with_reflection_needs_one_process():
    server = GRPOSection(use_vllm=True, vllm_mode="server")
    with pytest.raises(ConfigError, match="single training process"):
        check_vllm_rollout(server, reflection=True, num_processes=2)
    check_vllm_rollout(server, reflection=True, num_processes=1)
    check_vllm_rollout(server, reflection=False, num_processes=8)
    check_vllm_rollout(GRPOSection(use_vllm=True, vllm_mode="colocate"), reflection=True, num_processes=8)


class NaNLogprobGeneration(FakeVLLMGeneration):
    """vLLM reported a NaN logprob for one token; TRL's extract_logprobs hands it on as None."""

    def generate(self, prompts, images, num_generations):
        prompts, completions, logprobs, extra = super().generate(prompts, images, num_generations)
        logprobs[0][1] = [None]
        return prompts, completions, logprobs, extra


def test_issue_17_a_nan_logprob_from_vllm_does_not_crash_the_rollout(gym_dir, gym_model_dir):
    """Issue 17 finding 4: TRL's extract_logprobs turns vLLM's NaN into None; TRLVLLMGenerator kept
    it and the conversion to TRL's rows raised TypeError on an original's row. The token's logprob is
    NaN again (TRL's importance ratio 1 for it), in the generator and in the rollout's rows alike."""
    import math

    from safer_vlm.generation.base import Generation
    from safer_vlm.judge.base import Verdict
    from safer_vlm.models.loading import load_processor
    from safer_vlm.rollout.answers import Answer, RolloutGroup, RolloutResult, training_rows
    from safer_vlm.train.trl_adapter import trl_rollout_output

    processor = load_processor(gym_model_dir)
    samples = list(read_samples(gym_dir / "train.jsonl"))[:1]
    trainer = FakeTrainer()
    trainer.vllm_generation = NaNLogprobGeneration()
    (group,) = TRLVLLMGenerator(trainer, processor).generate([GenRequest(samples[0])], n=2)
    assert group[0].logprobs[0] == pytest.approx(-0.1) and math.isnan(group[0].logprobs[1])
    # a generator elsewhere that hands on TRL's None directly
    raw = Generation(text="x", completion_ids=[1, 2], logprobs=[-0.5, None], prompt_ids=[7])
    group[1].prompt_ids = [7]
    answers = [Answer(sample_index=0, slot=j, generation=g, uid=f"a/{j}", verdict=Verdict(parse_ok=False))
               for j, g in enumerate((raw, group[1]))]
    rows = training_rows([RolloutGroup(sample=samples[0], sample_index=0, originals=answers, members=answers)])
    out = trl_rollout_output(RolloutResult(groups=[], rows=rows, metrics={}), 2)
    assert out["logprobs"][0][0] == -0.5 and math.isnan(out["logprobs"][0][1])
    assert all(isinstance(x, float) for row in out["logprobs"] for x in row)

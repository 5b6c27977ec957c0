"""HFGenerator on the tiny model: batching with images, sampling, logprobs and prompt ids TRL can use."""

from __future__ import annotations

import math

import pytest
import torch
from transformers import GenerationConfig

from safer_vlm.generation.base import Generator, GenRequest
from safer_vlm.generation.hf_generator import HFGenerator
from safer_vlm.generation.messages import build_messages, processor_inputs


@pytest.fixture
def requests(tiny_dataset) -> list[GenRequest]:
    return [GenRequest(s) for s in tiny_dataset.samples]


def _run(generator: HFGenerator, requests: list[GenRequest], n: int, seed: int = 0):
    torch.manual_seed(seed)
    return generator.generate(requests, n=n)


def test_batched_sampling_shapes_and_tokens(tiny_policy, requests) -> None:
    model, processor = tiny_policy
    generator = HFGenerator(model, processor, max_new_tokens=24, batch_size=4)
    assert isinstance(generator, Generator)
    results = _run(generator, requests, n=3)
    tok = processor.tokenizer
    eos = {tok.convert_tokens_to_ids("<|im_end|>"), tok.pad_token_id}
    assert [len(r) for r in results] == [3, 3, 3]
    for request, gens in zip(requests, results, strict=True):
        for gen in gens:
            assert 1 <= len(gen.completion_ids) <= 24
            assert len(gen.logprobs) == len(gen.completion_ids)
            assert all(math.isfinite(lp) and lp <= 0 for lp in gen.logprobs)
            assert not eos & set(gen.completion_ids[:-1])  # stops at the first eos, no padding after it
            assert gen.text == tok.decode(gen.completion_ids, skip_special_tokens=True)
            assert model.config.image_token_id not in gen.completion_ids  # suppressed
            expected_pads = request.sample.meta["image_tokens"]
            assert gen.prompt_ids.count(processor.image_token_id) == expected_pads
            assert gen.prompt_ids[0] == tok.convert_tokens_to_ids("<|im_start|>")  # no left padding
            assert tok.decode(gen.prompt_ids).endswith("<|im_start|>assistant\n")
        assert len({tuple(g.completion_ids) for g in gens}) == 3  # sampled, not greedy


def test_prompt_ids_match_unbatched_encoding(tiny_policy, requests) -> None:
    model, processor = tiny_policy
    results = _run(HFGenerator(model, processor, max_new_tokens=2, batch_size=8), requests, n=1)
    for request, (gen,) in zip(requests, results, strict=True):
        alone = processor_inputs(processor, [build_messages(request)])
        assert gen.prompt_ids == alone["input_ids"][0].tolist()


def test_logprobs_match_a_forward_pass(tiny_policy, requests) -> None:
    model, processor = tiny_policy
    temperature = 0.7
    generator = HFGenerator(model, processor, max_new_tokens=16, temperature=temperature, batch_size=8)
    results = _run(generator, requests, n=2)
    suppressed = [model.config.image_token_id, model.config.video_token_id]
    for request, gens in zip(requests, results, strict=True):
        inputs = processor_inputs(processor, [build_messages(request)])
        for gen in gens:
            completion = torch.tensor([gen.completion_ids])
            full = {**inputs, "input_ids": torch.cat([inputs["input_ids"], completion], dim=1)}
            full["attention_mask"] = torch.ones_like(full["input_ids"])
            full["mm_token_type_ids"] = torch.cat(
                [inputs["mm_token_type_ids"], torch.zeros_like(completion)], dim=1
            )
            with torch.no_grad():
                logits = model(**full).logits[0].float()
            start = inputs["input_ids"].shape[1] - 1
            step_logits = logits[start : start + completion.shape[1]] / temperature
            step_logits[:, suppressed] = float("-inf")
            expected = torch.log_softmax(step_logits, -1).gather(-1, completion.T).squeeze(-1)
            torch.testing.assert_close(torch.tensor(gen.logprobs), expected, atol=2e-4, rtol=1e-4)


def test_deterministic_under_a_seed(tiny_policy, requests) -> None:
    model, processor = tiny_policy
    generator = HFGenerator(model, processor, max_new_tokens=16)
    first, second, other = (
        _run(generator, requests, 2, 0),
        _run(generator, requests, 2, 0),
        _run(generator, requests, 2, 1),
    )
    assert first == second
    assert first != other


def test_greedy_repeats_itself(tiny_policy, requests) -> None:
    model, processor = tiny_policy
    results = _run(HFGenerator(model, processor, max_new_tokens=8, temperature=0.0), requests[:1], n=2)
    ((a, b),) = results
    assert a.completion_ids == b.completion_ids


def test_external_generation_config_is_used_and_left_untouched(tiny_policy, requests) -> None:
    model, processor = tiny_policy
    tok = processor.tokenizer
    config = GenerationConfig(
        max_new_tokens=5,
        do_sample=True,
        temperature=1.0,
        top_k=0,
        pad_token_id=tok.pad_token_id,
        eos_token_id=[tok.eos_token_id],
        suppress_tokens=[model.config.image_token_id],
    )
    results = _run(HFGenerator(model, processor, max_new_tokens=50, generation_config=config), requests, n=1)
    assert all(1 <= len(g.completion_ids) <= 5 for gens in results for g in gens)
    assert not config.output_scores and not config.return_dict_in_generate


def test_restores_training_mode(tiny_policy, requests) -> None:
    model, processor = tiny_policy
    generator = HFGenerator(model, processor, max_new_tokens=2)
    model.train()
    generator.generate(requests[:1])
    assert model.training
    model.eval()
    generator.generate(requests[:1])
    assert not model.training


def test_request_messages_override_the_sample(tiny_policy, tiny_dataset) -> None:
    model, processor = tiny_policy
    sample = tiny_dataset.samples[0]
    image = str(sample.image_paths()[0])
    chat = (
        {"role": "user", "content": [{"type": "image", "path": image}, {"type": "text", "text": "Colour?"}]},
        {"role": "assistant", "content": "Red."},
        {"role": "user", "content": "Say it safely."},
    )
    ((gen,),) = _run(
        HFGenerator(model, processor, max_new_tokens=4), [GenRequest(sample, messages=chat)], n=1
    )
    prompt = processor.tokenizer.decode(gen.prompt_ids)
    assert "Colour?" in prompt and "Red.<|im_end|>" in prompt and "Say it safely." in prompt
    assert sample.question not in prompt
    assert gen.prompt_ids.count(processor.image_token_id) == sample.meta["image_tokens"]


def test_rejects_bad_arguments(tiny_policy) -> None:
    model, processor = tiny_policy
    with pytest.raises(ValueError):
        HFGenerator(model, processor, batch_size=0)
    with pytest.raises(ValueError):
        HFGenerator(model, processor).generate([], n=0)


@pytest.mark.parametrize("attn", [None, "sdpa_padsafe"])
def test_static_kv_cache_samples_what_the_dynamic_cache_samples(tiny_model_dir, requests, attn) -> None:
    """The throughput knob changes memory layout, not the answers: same seed, same tokens and logprobs,
    on a left-padded batch (the three requests have different prompt lengths)."""
    from safer_vlm.models.loading import load_policy

    model, processor = load_policy(tiny_model_dir, dtype="float32", attn_implementation=attn)
    dynamic = HFGenerator(model, processor, max_new_tokens=12, batch_size=16)
    static = HFGenerator(model, processor, max_new_tokens=12, batch_size=16, cache_implementation="static",
                         compile=False)
    assert static._sampling_config.cache_implementation == "static" and static._sampling_config.disable_compile
    a, b = _run(dynamic, requests, n=2), _run(static, requests, n=2)
    for ga, gb in zip([g for gs in a for g in gs], [g for gs in b for g in gs], strict=True):
        assert ga.completion_ids == gb.completion_ids
        assert ga.prompt_ids == gb.prompt_ids
        assert ga.logprobs == pytest.approx(gb.logprobs, abs=1e-4)

"""Generators: backends that sample answers for GenRequests (see `safer_vlm.generation.base.Generator`)."""

from __future__ import annotations

import copy
from typing import Any

from safer_vlm.data.images import MAX_PIXELS
from safer_vlm.generation.base import Generation, GenRequest
from safer_vlm.generation.messages import build_messages, processor_inputs


class HFGenerator:
    """Batched sampling with a transformers model (the policy itself, on CPU or one GPU).

    Returns token ids and per-token logprobs of the sampled tokens, taken from the processed scores
    (after temperature, top-k/top-p and token suppression), the same quantity TRL's importance
    sampling correction expects from vLLM's `processed_logprobs`. Pass TRL's
    `trainer.generation_config` as `generation_config` to sample exactly as the trainer would; it
    then overrides `max_new_tokens`, `temperature`, `top_p` and `top_k`.

    Throughput knobs (decoding a few sequences at a time is latency-bound on a GPU): `batch_size`
    sequences per `generate` call (a GRPO rollout stage in one call when it is at least the stage's
    size), `cache_implementation="static"` (a pre-allocated KV cache) and `compile=True` (transformers
    compiles the decode step when the cache is static; CUDA, and on CPU only with a compiler).
    """

    def __init__(
        self,
        model: Any,
        processor: Any,
        *,
        max_new_tokens: int = 64,
        temperature: float = 1.0,
        top_p: float = 1.0,
        top_k: int = 0,
        batch_size: int = 8,
        generation_config: Any = None,
        system_prompt: str | None = None,
        max_pixels: int = MAX_PIXELS,
        cache_implementation: str | None = None,
        compile: bool | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model = model
        self.processor = processor
        self.batch_size = batch_size
        self.system_prompt = system_prompt
        self.max_pixels = max_pixels
        config = (
            generation_config
            if generation_config is not None
            else self._default_generation_config(max_new_tokens, temperature, top_p, top_k)
        )
        #: The config as given or built; `_sampling_config` is the copy that also asks for scores.
        self.generation_config = config
        self._sampling_config = copy.deepcopy(config)
        self._sampling_config.return_dict_in_generate = True
        self._sampling_config.output_scores = True
        if cache_implementation is not None:
            self._sampling_config.cache_implementation = cache_implementation
        if compile is not None:
            self._sampling_config.disable_compile = not compile

    def _default_generation_config(self, max_new_tokens: int, temperature: float, top_p: float, top_k: int):
        from transformers import GenerationConfig

        tokenizer = self.processor.tokenizer
        base = getattr(self.model, "generation_config", None)
        eos = getattr(base, "eos_token_id", None) or tokenizer.eos_token_id
        pad = getattr(base, "pad_token_id", None)
        pad = tokenizer.pad_token_id if pad is None else pad
        # A sampled image/video placeholder would have no features behind it on the next pass.
        suppress = [
            t
            for t in (
                getattr(self.model.config, "image_token_id", None),
                getattr(self.model.config, "video_token_id", None),
            )
            if t is not None
        ]
        sampling: dict[str, Any]
        if temperature > 0:
            sampling = {"do_sample": True, "temperature": temperature, "top_p": top_p, "top_k": top_k}
        else:
            sampling = {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
        return GenerationConfig(
            max_new_tokens=max_new_tokens,
            eos_token_id=eos,
            pad_token_id=pad,
            bos_token_id=getattr(base, "bos_token_id", None),
            suppress_tokens=suppress or None,
            disable_compile=True,
            **sampling,
        )

    def _eos_ids(self) -> set[int]:
        eos = self.generation_config.eos_token_id
        if eos is None:
            eos = self.processor.tokenizer.eos_token_id
        return set(eos) if isinstance(eos, list | tuple) else {eos}

    def generate(self, requests: list[GenRequest], n: int = 1) -> list[list[Generation]]:
        """`n` samples per request, in request order; work is batched `batch_size` sequences at a time."""
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        chats = [build_messages(r, system_prompt=self.system_prompt) for r in requests]
        jobs = [i for i in range(len(chats)) for _ in range(n)]
        results: list[list[Generation]] = [[] for _ in requests]
        was_training = self.model.training
        self.model.eval()
        try:
            for start in range(0, len(jobs), self.batch_size):
                batch = jobs[start : start + self.batch_size]
                for i, gen in zip(batch, self._generate_batch([chats[i] for i in batch]), strict=True):
                    results[i].append(gen)
        finally:
            self.model.train(was_training)
        return results

    def _generate_batch(self, chats: list[list[dict]]) -> list[Generation]:
        import torch

        inputs = processor_inputs(self.processor, chats, self.max_pixels)
        param = next(self.model.parameters())
        inputs = {k: v.to(param.device) for k, v in inputs.items()}
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(param.dtype)
        with torch.inference_mode():
            out = self.model.generate(**inputs, generation_config=self._sampling_config)
            prompt_len = inputs["input_ids"].shape[1]
            sampled = out.sequences[:, prompt_len:]
            # One step at a time: stacking all steps' scores would cost batch x steps x vocab memory.
            logprobs = torch.stack(
                [
                    torch.log_softmax(step.float(), dim=-1).gather(-1, sampled[:, t : t + 1]).squeeze(-1)
                    for t, step in enumerate(out.scores)
                ],
                dim=1,
            )
        eos_ids = self._eos_ids()
        tokenizer = self.processor.tokenizer
        generations = []
        for row in range(sampled.shape[0]):
            ids = sampled[row].tolist()
            end = next((j + 1 for j, tok in enumerate(ids) if tok in eos_ids), len(ids))
            completion = ids[:end]
            prompt_ids = inputs["input_ids"][row][inputs["attention_mask"][row].bool()].tolist()
            generations.append(
                Generation(
                    text=tokenizer.decode(completion, skip_special_tokens=True),
                    completion_ids=completion,
                    logprobs=logprobs[row, :end].tolist(),
                    prompt_ids=prompt_ids,
                )
            )
        return generations

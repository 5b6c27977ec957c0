"""The policy under evaluation, as a `Generator`: a local HF checkpoint (any Qwen2.5-VL-compatible
model, our run folders' `final/`, or a LoRA adapter folder over its base), vLLM's offline engine
when installed, or an OpenAI-compatible endpoint. The generators are the shared ones in
`safer_vlm.generation`; vLLM's offline engine is wrapped here because only eval uses it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safer_vlm.errors import ConfigError
from safer_vlm.eval.config import EvalConfig
from safer_vlm.generation.base import Generation, GenRequest


def load_hf(model: str, *, dtype: str, device: str) -> tuple[Any, Any]:
    """`(model, processor)`; a folder holding `adapter_config.json` is a LoRA adapter, merged into
    the base it names (`base_model_name_or_path`)."""
    import transformers

    from safer_vlm.models.loading import load_policy, load_processor

    transformers.utils.logging.disable_progress_bar()  # our own bars report progress
    adapter_cfg = Path(model) / "adapter_config.json"
    if not adapter_cfg.is_file():
        return load_policy(model, dtype=dtype, device=device)  # type: ignore[arg-type]
    base = json.loads(adapter_cfg.read_text(encoding="utf-8")).get("base_model_name_or_path")
    if not base:
        raise ConfigError(f"{adapter_cfg}: no 'base_model_name_or_path': cannot find the adapter's base model")
    policy, processor = load_policy(base, dtype=dtype, device=device)  # type: ignore[arg-type]
    from peft import PeftModel

    policy = PeftModel.from_pretrained(policy, model).merge_and_unload()
    if (Path(model) / "preprocessor_config.json").is_file():
        processor = load_processor(model)
    return policy, processor


class PerRowGumbel:
    """A logits processor that makes greedy decoding sample: temperature, then top-k and top-p as
    transformers applies them (same order), then Gumbel noise drawn from each row's own seeded
    `torch.Generator`; the argmax of `logits / T + Gumbel` is an exact sample from the (filtered)
    tempered softmax (the Gumbel-max trick). Each row's stream depends only on its item's seed, so
    an answer does not change with batch size, batch order or a resume (on the same device kind:
    CPU and CUDA generators give different streams)."""

    def __init__(self, seeds: list[int], temperature: float, top_p: float, top_k: int = 0) -> None:
        import torch

        self.temperature = temperature
        self.top_p = top_p
        self.top_k = top_k
        self.seeds = list(seeds)
        self.generators: list[torch.Generator] = []  # made on the logits' device at the first step

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        logits = scores.float() / self.temperature
        if self.top_k and self.top_k < logits.shape[-1]:
            kth = torch.topk(logits, self.top_k, dim=-1).values[..., -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        if self.top_p < 1.0:  # transformers' TopPLogitsWarper: drop the low tail of mass 1 - top_p
            sorted_logits, order = torch.sort(logits, descending=False, dim=-1)
            cum = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
            drop_sorted = cum <= (1 - self.top_p)
            drop_sorted[..., -1:] = False  # keep at least the most likely token
            drop = drop_sorted.scatter(-1, order, drop_sorted)
            logits = logits.masked_fill(drop, float("-inf"))
        if not self.generators:  # one stream per row, on the device (no host round trip per step)
            self.generators = [torch.Generator(device=logits.device).manual_seed(s) for s in self.seeds]
        uniform = torch.stack([
            torch.rand(logits.shape[-1], generator=g, dtype=torch.float64, device=logits.device)
            for g in self.generators
        ])
        gumbel = -torch.log(-torch.log(uniform.clamp(1e-300, 1.0 - 1e-16)))
        return (logits.double() + gumbel).to(scores.dtype)


class _WithLogitsProcessor:
    """The policy model with one extra logits processor passed to every `generate` call (the
    shared HFGenerator takes no processor argument; everything else is the model's own)."""

    def __init__(self, model: Any) -> None:
        self._model = model
        self.processor: Any = None

    def generate(self, *args: Any, **kwargs: Any) -> Any:
        from transformers import LogitsProcessorList

        if self.processor is not None:
            kwargs["logits_processor"] = LogitsProcessorList([self.processor])
        return self._model.generate(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)


class SeededHF:
    """HFGenerator whose every answer has its own seed, `cache.item_seed(seed, item id, k)`.

    Greedy (temperature 0) decodes as is. Sampling decodes greedily through `PerRowGumbel`, in
    batches of `batch_size` rows, so the rows never share one RNG stream: the same item gets the
    same answers whatever the batch size and after a kill and resume. What can still differ is
    the float arithmetic: a left-padded row's logits differ from an unpadded run's in the last
    bits, which flips a token only at a near tie (see tests/eval/test_sampling.py)."""

    def __init__(self, model: Any, processor: Any, sampling: dict[str, Any], cfg: EvalConfig) -> None:
        from safer_vlm.generation.hf_generator import HFGenerator

        self.seed = int(sampling["seed"])
        self.temperature = float(sampling["temperature"])
        self.top_p = float(sampling["top_p"])
        self.top_k = int(sampling.get("top_k") or 0)
        self.rows_per_call = cfg.batch_size * sampling["samples_per_item"]
        self.model = _WithLogitsProcessor(model)
        self.inner = HFGenerator(
            self.model, processor, max_new_tokens=sampling["max_new_tokens"], temperature=0.0,
            batch_size=self.rows_per_call, system_prompt=cfg.system_prompt,
        )

    def generate(self, requests: list[GenRequest], n: int = 1) -> list[list[Generation]]:
        from safer_vlm.eval.cache import item_seed

        if self.temperature <= 0:
            return self.inner.generate(requests, n=n)
        jobs = [(i, k) for i in range(len(requests)) for k in range(n)]
        results: list[list[Generation]] = [[] for _ in requests]
        for start in range(0, len(jobs), self.rows_per_call):
            chunk = jobs[start : start + self.rows_per_call]
            self.model.processor = PerRowGumbel(
                [item_seed(self.seed, requests[i].sample.id, k) for i, k in chunk],
                self.temperature, self.top_p, self.top_k)
            try:
                outs = self.inner.generate([requests[i] for i, _ in chunk], n=1)
            finally:
                self.model.processor = None
            for (i, _), (gen,) in zip(chunk, outs, strict=True):
                results[i].append(gen)
        return results


class VLLMGenerator:
    """vLLM's offline `LLM.chat`, images sent as data URLs; text only (no token ids)."""

    def __init__(self, llm: Any, sampling: dict[str, Any], system_prompt: str | None) -> None:
        from vllm import SamplingParams

        self.llm = llm
        self.seed = int(sampling["seed"])
        self.system_prompt = system_prompt
        self.params = SamplingParams(
            n=sampling["samples_per_item"], temperature=sampling["temperature"], top_p=sampling["top_p"],
            max_tokens=sampling["max_new_tokens"], seed=sampling["seed"],
        )

    def generate(self, requests: list[GenRequest], n: int = 1) -> list[list[Generation]]:
        from safer_vlm.eval.cache import item_seed
        from safer_vlm.generation.messages import build_messages
        from safer_vlm.generation.openai_generator import to_openai_messages

        params = [self.params.clone() for _ in requests]
        for p, r in zip(params, requests, strict=True):  # one seed per item, not one per batch
            p.n = n
            p.seed = item_seed(self.seed, r.sample.id, 0)
        chats = [to_openai_messages(build_messages(r, system_prompt=self.system_prompt), r.sample.root)
                 for r in requests]
        outputs = self.llm.chat(chats, params, use_tqdm=False)
        return [[Generation(text=c.text) for c in out.outputs] for out in outputs]


class PolicyFactory:
    """Loads the model once and hands out a generator per benchmark's resolved sampling."""

    def __init__(self, cfg: EvalConfig) -> None:
        self.cfg = cfg
        self._loaded: Any = None

    def generator(self, sampling: dict[str, Any]) -> Any:
        cfg = self.cfg
        if cfg.policy == "hf":
            if self._loaded is None:
                from safer_vlm.eval.shard import rank_device

                self._loaded = load_hf(cfg.model, dtype=cfg.dtype, device=rank_device(cfg.device))
            return SeededHF(*self._loaded, sampling, cfg)
        if cfg.policy == "vllm":
            if self._loaded is None:
                try:
                    from vllm import LLM
                except ImportError:
                    raise ConfigError(
                        "policy 'vllm' needs vLLM, which is not installed here: `pip install vllm`, "
                        "or use policy 'hf'"
                    ) from None
                self._loaded = LLM(model=cfg.model, trust_remote_code=False, dtype=cfg.dtype)
            return VLLMGenerator(self._loaded, sampling, cfg.system_prompt)
        from safer_vlm.generation.openai_generator import OpenAICompatGenerator

        assert cfg.endpoint is not None
        endpoint = cfg.endpoint.model_copy(update={
            "model": cfg.endpoint.model or cfg.model, "temperature": sampling["temperature"],
            "top_p": sampling["top_p"], "max_tokens": sampling["max_new_tokens"],
            "system_prompt": cfg.system_prompt if cfg.system_prompt is not None else cfg.endpoint.system_prompt,
        })
        return OpenAICompatGenerator(endpoint)

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


class SeededHF:
    """HFGenerator with its sampling settings; seeds torch once per `generate` call."""

    def __init__(self, model: Any, processor: Any, sampling: dict[str, Any], cfg: EvalConfig) -> None:
        from safer_vlm.generation.hf_generator import HFGenerator

        self.seed = int(sampling["seed"])
        self.calls = 0
        self.inner = HFGenerator(
            model, processor, max_new_tokens=sampling["max_new_tokens"], temperature=sampling["temperature"],
            top_p=sampling["top_p"], batch_size=cfg.batch_size * sampling["samples_per_item"],
            system_prompt=cfg.system_prompt,
        )

    def generate(self, requests: list[GenRequest], n: int = 1) -> list[list[Generation]]:
        import torch

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed + self.calls)
            self.calls += 1
            return self.inner.generate(requests, n=n)


class VLLMGenerator:
    """vLLM's offline `LLM.chat`, images sent as data URLs; text only (no token ids)."""

    def __init__(self, llm: Any, sampling: dict[str, Any], system_prompt: str | None) -> None:
        from vllm import SamplingParams

        self.llm = llm
        self.system_prompt = system_prompt
        self.params = SamplingParams(
            n=sampling["samples_per_item"], temperature=sampling["temperature"], top_p=sampling["top_p"],
            max_tokens=sampling["max_new_tokens"], seed=sampling["seed"],
        )

    def generate(self, requests: list[GenRequest], n: int = 1) -> list[list[Generation]]:
        from safer_vlm.generation.messages import build_messages
        from safer_vlm.generation.openai_generator import to_openai_messages

        self.params.n = n
        chats = [to_openai_messages(build_messages(r, system_prompt=self.system_prompt), r.sample.root)
                 for r in requests]
        outputs = self.llm.chat(chats, self.params, use_tqdm=False)
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
                self._loaded = load_hf(cfg.model, dtype=cfg.dtype, device=cfg.device)
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

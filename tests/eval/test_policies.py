"""Policies: a LoRA adapter folder loads over its base; vLLM missing is one clear error."""

from __future__ import annotations

import sys

import pytest

from safer_vlm.errors import ConfigError
from safer_vlm.eval.config import EvalConfig
from safer_vlm.eval.policies import PolicyFactory, load_hf


def test_vllm_missing_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm -> ImportError
    cfg = EvalConfig(model="m", policy="vllm", benchmarks=[{"name": "jsonl", "path": tmp_path}],
                     judges=[tmp_path], out=tmp_path)
    with pytest.raises(ConfigError, match="needs vLLM"):
        PolicyFactory(cfg).generator({"samples_per_item": 1})


def test_lora_adapter_folder_loads_merged_over_its_base(tiny_model_dir, tmp_path):
    import torch
    from peft import LoraConfig, get_peft_model

    base, _ = load_hf(str(tiny_model_dir), dtype="float32", device="cpu")
    peft_model = get_peft_model(base, LoraConfig(r=2, target_modules=["q_proj"], init_lora_weights=False))
    peft_model.save_pretrained(tmp_path / "adapter")
    merged, processor = load_hf(str(tmp_path / "adapter"), dtype="float32", device="cpu")
    plain, _ = load_hf(str(tiny_model_dir), dtype="float32", device="cpu")
    name = next(n for n, _ in merged.named_parameters() if "q_proj.weight" in n)
    assert not torch.equal(dict(merged.named_parameters())[name], dict(plain.named_parameters())[name])
    assert processor is not None

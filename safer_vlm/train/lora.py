"""LoRA through peft, handed to TRL's GRPOTrainer as `peft_config`.

How TRL 1.16 uses it (checked in `trl/trainer/grpo_trainer.py`): it wraps the policy with
`get_peft_model` before anything else; with `beta > 0` it builds *no* reference model and computes
the reference log-probs with the adapters disabled (the base weights), so no second copy is held.
Trainer checkpoints then hold the adapter only, and `--resume` loads it back into the same wrapping.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from safer_vlm.train.config import LoRASection

#: The language model's modules in Qwen2.5-VL's module tree (`model.language_model.layers.N...`).
TEXT_MODEL_PREFIX = r".*language_model\..*\."


def target_modules(section: LoRASection) -> str | list[str]:
    """peft's `target_modules`: a regex limited to the text model, or the bare names with the vision tower."""
    if section.train_vision:
        return list(section.target_modules)
    names = "|".join(re.escape(n) for n in section.target_modules)
    return f"{TEXT_MODEL_PREFIX}({names})"


def peft_config(section: LoRASection) -> Any:
    """The `peft.LoraConfig` of `section` (None when LoRA is off)."""
    if not section.enabled:
        return None
    from peft import LoraConfig

    return LoraConfig(
        r=section.r,
        lora_alpha=section.alpha,
        lora_dropout=section.dropout,
        target_modules=target_modules(section),
        bias="none",
        task_type="CAUSAL_LM",
    )


def is_peft_model(model: Any) -> bool:
    try:
        from peft import PeftModel
    except ImportError:  # peft is optional: no adapters without it
        return False
    return isinstance(model, PeftModel)


def export_adapter(model: Any, processor: Any, path: Path, *, merge: bool) -> Path:
    """`path` gets the adapter (adapter_config.json + adapter_model.safetensors) and the processor
    files; with `merge`, `path/merged` also gets full merged weights (loadable without peft)."""
    from safer_vlm.models.loading import save_processor

    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path, safe_serialization=True)
    save_processor(processor, path)
    if merge:
        merged = model.merge_and_unload()  # folds the adapters into the base weights in place
        out = path / "merged"
        merged.save_pretrained(out, safe_serialization=True)
        save_processor(processor, out)
    return path

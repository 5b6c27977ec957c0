"""Attention implementations for the policy, chosen by config, and `sdpa_padsafe`, a padding-safe SDPA.

Why `sdpa_padsafe`: a left-padded batch gives every pad position a query row that may attend to
nothing (causal mask AND padding mask: all keys at or before a leading pad are pads). transformers
5.x no longer unmasks such rows for SDPA (`allow_torch_fix` is a no-op since 5.x), and CUDA's fused
SDPA kernels have a history of NaN gradients on fully masked rows (pytorch#103749, #109517,
#110213; transformers#38690): the row's log-sum-exp is -inf, the backward's exp(s - lse) is NaN,
and the NaN flows through dK/dV into every weight. `sdpa_padsafe` is plain SDPA whose mask gives
each fully masked query row one key, its own position, so no kernel ever sees an empty row. Real
(non-pad) rows keep exactly their mask, and no real row attends a pad key, so outputs at real
positions are unchanged; pad positions now carry finite junk that nothing reads.

`sdpa_math` is SDPA restricted to the math backend (no fused kernel): measured finite on the H200
where fused SDPA was not (issue 8), at eager-like memory; a fallback chosen by config.

The names are registered through transformers' public `AttentionInterface` and
`AttentionMaskInterface` (no patching of private internals) when this module is imported, which
`resolve_attn_implementation` does before any model is loaded, in every process that loads one
(TRL's reference model included).
"""

from __future__ import annotations

from typing import Any

PADSAFE = "sdpa_padsafe"
MATH_ONLY = "sdpa_math"

#: Text-model attention used on CUDA when `model.attn_implementation` is "auto".
CUDA_AUTO_TEXT = PADSAFE
#: Vision-tower attention on CUDA under "auto" (splits each image into its own unpadded chunk).
CUDA_AUTO_VISION = "sdpa"

_REGISTERED = False


def padsafe_mask(*args: Any, **kwargs: Any):
    """transformers' SDPA mask, with every fully masked query row allowed to attend its own position."""
    import torch
    from transformers.masking_utils import sdpa_mask

    mask = sdpa_mask(*args, **kwargs)
    if mask is None or not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
        return mask  # None: plain causal, no padding, so no empty row
    return unmask_empty_rows(mask, q_offset=kwargs.get("q_offset", 0), kv_offset=kwargs.get("kv_offset", 0))


def unmask_empty_rows(mask, *, q_offset: int = 0, kv_offset: int = 0):
    """A boolean (B, H, Q, K) mask with each all-False query row given its own key (when in range).

    Branch-free, so it traces and compiles; rows that attend anything are returned unchanged."""
    import torch

    q_len, kv_len = mask.shape[-2], mask.shape[-1]
    q_pos = torch.arange(q_len, device=mask.device) + q_offset
    kv_pos = torch.arange(kv_len, device=mask.device) + kv_offset
    own = q_pos[:, None] == kv_pos[None, :]  # (Q, K)
    empty = ~mask.any(dim=-1, keepdim=True)  # (B, H, Q, 1)
    return mask | (empty & own)


def math_only_sdpa_forward(*args: Any, **kwargs: Any):
    """transformers' SDPA attention with only the math backend enabled (flash, efficient, cuDNN off)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    with sdpa_kernel([SDPBackend.MATH]):
        return sdpa_attention_forward(*args, **kwargs)


def register_attention() -> None:
    """Make `sdpa_padsafe` and `sdpa_math` valid `attn_implementation`s in this process (idempotent)."""
    global _REGISTERED
    if _REGISTERED:
        return
    from transformers import AttentionInterface, AttentionMaskInterface
    from transformers.integrations.sdpa_attention import sdpa_attention_forward
    from transformers.masking_utils import sdpa_mask

    AttentionInterface.register(PADSAFE, sdpa_attention_forward)
    AttentionMaskInterface.register(PADSAFE, padsafe_mask)
    AttentionInterface.register(MATH_ONLY, math_only_sdpa_forward)
    AttentionMaskInterface.register(MATH_ONLY, sdpa_mask)
    _REGISTERED = True


AttnSpec = str | dict[str, str]


def resolve_attn_implementation(spec: AttnSpec | None, device: str) -> AttnSpec | None:
    """What to pass to `from_pretrained(attn_implementation=...)` for `model.attn_implementation`.

    "auto": transformers' own default on CPU (None: unchanged behaviour); on CUDA the padding-safe
    SDPA in the text model and SDPA in the vision tower. A string or a per-sub-config dict
    (`{"text_config": ..., "vision_config": ...}`) is passed through. Registers our names first."""
    register_attention()
    if spec is None:
        return None
    if spec == "auto":
        if not str(device).startswith("cuda"):
            return None
        return {"text_config": CUDA_AUTO_TEXT, "vision_config": CUDA_AUTO_VISION}
    return spec


def describe(spec: AttnSpec | None) -> str:
    """One short label for logs and benchmark tables."""
    if spec is None:
        return "default"
    if isinstance(spec, dict):
        return ",".join(f"{k.removesuffix('_config')}={v}" for k, v in sorted(spec.items()))
    return spec


def empty_query_rows(mask) -> int:
    """Query rows of a boolean 4D mask that attend nothing (what fused kernels choke on)."""
    if mask is None:
        return 0
    return int((~mask.any(dim=-1)).sum())


def attn_of(model: Any) -> AttnSpec:
    """The attention a loaded Qwen2.5-VL runs, per sub-model, in the form `from_pretrained` accepts
    (so TRL's reference model can be built exactly like the policy)."""
    config = model.config
    text = getattr(config, "text_config", None)
    vision = getattr(config, "vision_config", None)
    if text is None or vision is None:
        return config._attn_implementation
    return {"text_config": text._attn_implementation, "vision_config": vision._attn_implementation}

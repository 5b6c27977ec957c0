"""`sdpa_padsafe`: no query row of a left-padded batch attends nothing, and real positions are unchanged."""

from __future__ import annotations

import pytest
import torch

from safer_vlm.models.attention import (
    PADSAFE,
    empty_query_rows,
    register_attention,
    resolve_attn_implementation,
    unmask_empty_rows,
)


def test_unmask_empty_rows_gives_only_empty_rows_their_own_key():
    pad = torch.tensor([[0, 0, 1, 1], [1, 1, 1, 1]], dtype=torch.bool)
    causal = torch.tril(torch.ones(4, 4, dtype=torch.bool))
    mask = causal[None, None] & pad[:, None, None, :]
    assert empty_query_rows(mask) == 2  # the two leading pads of row 0
    fixed = unmask_empty_rows(mask)
    assert empty_query_rows(fixed) == 0
    assert fixed[0, 0, 0].tolist() == [True, False, False, False]
    assert fixed[0, 0, 1].tolist() == [False, True, False, False]
    assert torch.equal(fixed[0, 0, 2:], mask[0, 0, 2:])  # real rows untouched
    assert torch.equal(fixed[1], mask[1])


def test_auto_is_unchanged_on_cpu_and_padsafe_text_on_cuda():
    assert resolve_attn_implementation("auto", "cpu") is None
    assert resolve_attn_implementation(None, "cuda") is None
    assert resolve_attn_implementation("auto", "cuda") == {"text_config": PADSAFE, "vision_config": "sdpa"}
    assert resolve_attn_implementation("eager", "cuda") == "eager"


def _left_padded_batch(processor, tiny_dataset):
    from safer_vlm.generation.base import GenRequest
    from safer_vlm.generation.messages import build_messages, processor_inputs

    chats = [build_messages(GenRequest(s)) for s in tiny_dataset.samples]
    return processor_inputs(processor, chats)


def _forward(model_dir, attn, batch, seen_masks):
    from safer_vlm.models.loading import load_policy

    model, _ = load_policy(model_dir, dtype="float32", attn_implementation=attn)
    model.train()
    real = torch.nn.functional.scaled_dot_product_attention

    def spy(q, k, v, attn_mask=None, **kw):
        if attn_mask is not None and attn_mask.dtype == torch.bool and q.shape[-2] > 1 and attn_mask.shape[-2] > 1:
            seen_masks.append(attn_mask)
        return real(q, k, v, attn_mask=attn_mask, **kw)

    torch.nn.functional.scaled_dot_product_attention = spy
    try:
        logits = model(**batch).logits
    finally:
        torch.nn.functional.scaled_dot_product_attention = real
    real_pos = batch["attention_mask"].bool()
    loss = logits[real_pos].float().logsumexp(-1).mean()
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return logits, grads


def test_padsafe_matches_sdpa_at_real_positions(tiny_model_dir, tiny_policy, tiny_dataset):
    register_attention()
    _, processor = tiny_policy
    batch = _left_padded_batch(processor, tiny_dataset)
    assert (batch["attention_mask"] == 0).any(), "the batch must be left-padded for this test to mean anything"
    seen_sdpa: list = []
    seen_safe: list = []
    logits_sdpa, grads_sdpa = _forward(tiny_model_dir, "sdpa", batch, seen_sdpa)
    logits_safe, grads_safe = _forward(tiny_model_dir, PADSAFE, batch, seen_safe)
    # plain sdpa hands the kernel fully masked query rows (the trigger of the CUDA NaN) ...
    assert seen_sdpa and sum(empty_query_rows(m) for m in seen_sdpa) > 0
    # ... the padding-safe one never does
    assert seen_safe and sum(empty_query_rows(m) for m in seen_safe) == 0
    real_pos = batch["attention_mask"].bool()
    assert torch.equal(logits_sdpa[real_pos], logits_safe[real_pos])
    assert grads_sdpa.keys() == grads_safe.keys()
    for name, g in grads_sdpa.items():
        assert torch.isfinite(grads_safe[name]).all(), name
        torch.testing.assert_close(grads_safe[name], g, rtol=1e-4, atol=1e-6, msg=name)


@pytest.mark.parametrize("attn", ["eager", {"text_config": PADSAFE, "vision_config": "sdpa"}])
def test_load_policy_sets_the_attention(tiny_model_dir, attn):
    from safer_vlm.models.loading import load_policy

    model, _ = load_policy(tiny_model_dir, dtype="float32", attn_implementation=attn)
    text = attn if isinstance(attn, str) else attn["text_config"]
    vision = attn if isinstance(attn, str) else attn["vision_config"]
    assert model.config.text_config._attn_implementation == text
    assert model.config.vision_config._attn_implementation == vision


def test_sdpa_math_runs_only_the_math_backend(tiny_model_dir, tiny_policy, tiny_dataset):
    from safer_vlm.models.attention import MATH_ONLY
    from safer_vlm.models.loading import load_policy

    _, processor = tiny_policy
    batch = _left_padded_batch(processor, tiny_dataset)
    flags: list[tuple[bool, bool, bool]] = []
    real = torch.nn.functional.scaled_dot_product_attention

    def spy(*args, **kw):
        b = torch.backends.cuda
        flags.append((b.flash_sdp_enabled(), b.mem_efficient_sdp_enabled(), b.math_sdp_enabled()))
        return real(*args, **kw)

    logits = {}
    for attn in ("sdpa", MATH_ONLY):
        model, _ = load_policy(tiny_model_dir, dtype="float32", attn_implementation=attn)
        flags.clear()
        torch.nn.functional.scaled_dot_product_attention = spy
        try:
            with torch.no_grad():
                logits[attn] = model(**batch).logits
        finally:
            torch.nn.functional.scaled_dot_product_attention = real
        if attn == MATH_ONLY:
            assert flags and all(f == (False, False, True) for f in flags)
        else:
            assert flags and all(f[0] for f in flags)
    real_pos = batch["attention_mask"].bool()
    torch.testing.assert_close(logits[MATH_ONLY][real_pos], logits["sdpa"][real_pos], rtol=1e-4, atol=1e-5)

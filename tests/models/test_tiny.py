"""The tiny offline Qwen2.5-VL: deterministic build, faithful save/reload, Qwen-style tokens and images."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from safer_vlm.models.loading import load_policy
from safer_vlm.models.tiny import SPECIAL_TOKENS, build_tiny_vlm
from safer_vlm.response_format import format_response


def _tensors(model_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(model_dir / "model.safetensors")


def test_saved_as_safetensors_with_matching_token_ids(tiny_model_dir: Path) -> None:
    files = {p.name for p in tiny_model_dir.iterdir()}
    assert "model.safetensors" in files
    assert not any(name.endswith((".bin", ".pt", ".pkl")) for name in files)
    model, processor = load_policy(tiny_model_dir)
    tok = processor.tokenizer
    assert [tok.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS] == list(range(len(SPECIAL_TOKENS)))
    cfg = model.config
    assert cfg.image_token_id == tok.convert_tokens_to_ids("<|image_pad|>") == processor.image_token_id
    assert cfg.video_token_id == tok.convert_tokens_to_ids("<|video_pad|>")
    assert cfg.vision_start_token_id == tok.convert_tokens_to_ids("<|vision_start|>")
    assert cfg.vision_end_token_id == tok.convert_tokens_to_ids("<|vision_end|>")
    assert cfg.text_config.vocab_size == len(tok)
    assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|endoftext|>"
    assert tok.padding_side == "left"
    assert model.generation_config.eos_token_id == [tok.eos_token_id, tok.pad_token_id]
    text_cfg = cfg.text_config
    head_dim = text_cfg.hidden_size // text_cfg.num_attention_heads
    assert sum(text_cfg.rope_parameters["mrope_section"]) == head_dim // 2
    assert len(text_cfg.layer_types) == text_cfg.num_hidden_layers == 2


def test_build_is_deterministic_per_seed(tiny_model_dir: Path, tmp_path: Path) -> None:
    again = build_tiny_vlm(tmp_path / "again", seed=0)
    other = build_tiny_vlm(tmp_path / "other", seed=1)
    assert (again / "tokenizer.json").read_bytes() == (tiny_model_dir / "tokenizer.json").read_bytes()
    first, second, third = _tensors(tiny_model_dir), _tensors(again), _tensors(other)
    assert first.keys() == second.keys() == third.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert not all(torch.equal(first[k], third[k]) for k in first)


def test_reload_and_resave_keeps_weights(tiny_model_dir: Path, tmp_path: Path) -> None:
    model, processor = load_policy(tiny_model_dir)
    model.save_pretrained(tmp_path / "copy")
    processor.save_pretrained(tmp_path / "copy")
    original, copy = _tensors(tiny_model_dir), _tensors(tmp_path / "copy")
    assert original.keys() == copy.keys()
    assert all(torch.equal(original[k], copy[k]) for k in original)
    _, reloaded = load_policy(tmp_path / "copy")
    text = format_response("The request is harmful, so I should refuse.", "I can't help with that.")
    assert reloaded.tokenizer(text)["input_ids"] == processor.tokenizer(text)["input_ids"]
    assert reloaded.chat_template == processor.chat_template
    saved = json.loads((tmp_path / "copy" / "processor_config.json").read_text())
    assert saved["processor_class"] == "Qwen2_5_VLProcessor"


def test_tokenizer_round_trips_and_compresses_demo_text(tiny_policy) -> None:
    _, processor = tiny_policy
    tok = processor.tokenizer
    text = format_response("The request is harmful, so I should refuse.", "I can't help with that.")
    ids = tok(text)["input_ids"]
    assert tok.decode(ids) == text
    assert len(ids) < len(text) / 2.5
    for word in (" red", " circle", " refuse", " careful", " colour"):
        assert len(tok.tokenize(word)) == 1, word
    assert tok.decode(tok("héllo 🙂")["input_ids"]) == "héllo 🙂"  # byte-level: nothing is unknown


def test_extra_corpus_reaches_the_tokenizer(tmp_path: Path) -> None:
    word = " zorbulation"
    plain = build_tiny_vlm(tmp_path / "plain")
    extra = build_tiny_vlm(tmp_path / "extra", extra_corpus=[f"the{word} is{word}"] * 50)
    _, p_plain = load_policy(plain)
    _, p_extra = load_policy(extra)
    assert len(p_extra.tokenizer.tokenize(word)) < len(p_plain.tokenizer.tokenize(word))


def test_chat_template_renders_turns_and_image_pads(tiny_policy) -> None:
    _, processor = tiny_policy
    messages = [
        {"role": "system", "content": "Be safe."},
        {
            "role": "user",
            "content": [{"type": "image", "path": "/x.png"}, {"type": "text", "text": "What is it?"}],
        },
        {"role": "assistant", "content": "A circle."},
        {"role": "user", "content": [{"type": "text", "text": "Sure?"}]},
    ]
    rendered = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert rendered == (
        "<|im_start|>system\nBe safe.<|im_end|>\n"
        "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>What is it?<|im_end|>\n"
        "<|im_start|>assistant\nA circle.<|im_end|>\n"
        "<|im_start|>user\nSure?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    no_prompt = processor.apply_chat_template(messages[:2], tokenize=False, add_generation_prompt=False)
    assert no_prompt.endswith("What is it?<|im_end|>\n")


@pytest.mark.parametrize(
    ("size", "tokens"), [((56, 56), 4), ((112, 112), 16), ((84, 112), 12), ((20, 20), 4), ((448, 448), 16)]
)
def test_processor_expands_image_tokens(tiny_policy, size: tuple[int, int], tokens: int) -> None:
    model, processor = tiny_policy
    text = "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>Hi<|im_end|>\n"
    inputs = processor(text=[text], images=[Image.new("RGB", size, "blue")], return_tensors="pt")
    assert int((inputs["input_ids"] == processor.image_token_id).sum()) == tokens
    with torch.no_grad():
        logits = model(**inputs).logits
    assert logits.shape == (1, inputs["input_ids"].shape[1], model.config.text_config.vocab_size)
    assert torch.isfinite(logits).all()

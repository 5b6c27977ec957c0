"""A tiny, randomly initialised Qwen2.5-VL with its own tokenizer, built offline in seconds.

For tests and the demo only: it has the real architecture (vision tower, merger, M-RoPE text
decoder) and the real processor classes, so every code path that runs on Qwen2.5-VL-3B/7B runs on
it, but it knows nothing until trained. It is saved like any Hugging Face checkpoint
(safetensors, tokenizer, image processor, chat template), so `load_policy` reads it with the same
code that reads a real checkpoint.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

#: Special tokens, in id order (ids 0..7); names as in Qwen2.5-VL.
SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)

CHAT_TEMPLATE_PATH = Path(__file__).with_name("qwen2_5_vl_chat.jinja")

PATCH_SIZE = 14
MERGE_SIZE = 2


def _train_tokenizer(corpus: Sequence[str], vocab_size: int):
    """A byte-level BPE (like Qwen's) trained on `corpus`, wrapped for transformers."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        padding_side="left",
        model_max_length=4096,
        clean_up_tokenization_spaces=False,
        chat_template=CHAT_TEMPLATE_PATH.read_text(encoding="utf-8"),
    )


def _model_config(tokenizer, *, hidden: int, layers: int, max_positions: int):
    """Qwen2.5-VL config built from scratch (editing a default config leaves derived fields stale)."""
    from transformers import Qwen2_5_VLConfig

    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    heads, kv_heads = 4, 2
    head_dim = hidden // heads
    # M-RoPE splits head_dim/2 rotary frequencies across (temporal, height, width).
    quarter = head_dim // 2 // 4
    mrope_section = [head_dim // 2 - 2 * quarter, quarter, quarter]
    text_config = {
        "vocab_size": len(tokenizer),
        "hidden_size": hidden,
        "intermediate_size": 2 * hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads,
        "max_position_embeddings": max_positions,
        "rope_parameters": {
            "rope_type": "default",
            "rope_theta": 1_000_000.0,
            "mrope_section": mrope_section,
        },
        "bos_token_id": ids["<|endoftext|>"],
        "eos_token_id": ids["<|im_end|>"],
        "pad_token_id": ids["<|endoftext|>"],
        "use_sliding_window": False,
    }
    vision_config = {
        "depth": 2,
        "hidden_size": hidden,
        "intermediate_size": 2 * hidden,
        "num_heads": 4,
        "patch_size": PATCH_SIZE,
        "spatial_merge_size": MERGE_SIZE,
        "temporal_patch_size": 2,
        "window_size": 4 * PATCH_SIZE * MERGE_SIZE,
        "fullatt_block_indexes": [1],
        "out_hidden_size": hidden,
    }
    return Qwen2_5_VLConfig(
        text_config=text_config,
        vision_config=vision_config,
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=False,
    )


def build_tiny_vlm(
    out_dir: Path,
    *,
    seed: int = 0,
    extra_corpus: Sequence[str] = (),
    vocab_size: int = 1024,
    hidden_size: int = 64,
    num_layers: int = 2,
    min_image_pixels: int = 56 * 56,
    max_image_pixels: int = 112 * 112,
) -> Path:
    """Build and save a random tiny Qwen2.5-VL, its tokenizer and processor into `out_dir`.

    Deterministic for a given `seed` and corpus. `extra_corpus` lets the gym add its own texts to the
    tokenizer's training data. Images are resized to between `min_image_pixels` and
    `max_image_pixels` (default: 56-112 px squares, i.e. 4-16 image tokens). Returns `out_dir`.
    """
    import torch
    from transformers import GenerationConfig, Qwen2_5_VLForConditionalGeneration, Qwen2VLImageProcessorPil

    from safer_vlm.models.loading import make_processor
    from safer_vlm.models.tiny_corpus import builtin_corpus

    out_dir = Path(out_dir)
    tokenizer = _train_tokenizer([*builtin_corpus(), *extra_corpus], vocab_size)
    image_processor = Qwen2VLImageProcessorPil(
        min_pixels=min_image_pixels,
        max_pixels=max_image_pixels,
        patch_size=PATCH_SIZE,
        merge_size=MERGE_SIZE,
        temporal_patch_size=2,
    )
    processor = make_processor(image_processor, tokenizer, chat_template=tokenizer.chat_template)

    config = _model_config(tokenizer, hidden=hidden_size, layers=num_layers, max_positions=4096)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen2_5_VLForConditionalGeneration(config).to(torch.float32)
    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
    pad = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    model.generation_config = GenerationConfig(
        bos_token_id=pad, eos_token_id=[eos, pad], pad_token_id=pad, do_sample=True, temperature=1.0
    )

    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    processor.save_pretrained(out_dir)
    return out_dir

"""A tiny, randomly initialised Qwen2.5-VL with its own tokenizer, built offline in seconds.

For tests and the demo only: it has the real architecture (vision tower, merger, M-RoPE text
decoder) and the real processor classes, so every code path that runs on Qwen2.5-VL-3B/7B runs on
it, but it knows nothing until trained. It is saved like any Hugging Face checkpoint
(safetensors, tokenizer, image processor, chat template), so `load_policy` reads it with the same
code that reads a real checkpoint.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True)
class VLMShape:
    """Sizes of a Qwen2.5-VL: the tiny default, or a real model's shape for random-weight GPU checks."""

    hidden: int = 64
    layers: int = 2
    heads: int = 4
    kv_heads: int = 2
    intermediate: int = 128
    vision_depth: int = 2
    vision_hidden: int = 64
    vision_heads: int = 4
    vision_intermediate: int = 128
    fullatt_block_indexes: tuple[int, ...] = (1,)
    vocab_size: int | None = None  # None: the tokenizer's size; larger pads the embedding like Qwen's
    tie_word_embeddings: bool = False


#: Qwen2.5-VL-3B-Instruct's published shape (text 36 x 2048, ViT 32 x 1280, vocab 151,936).
QWEN2_5_VL_3B_SHAPE = VLMShape(
    hidden=2048,
    layers=36,
    heads=16,
    kv_heads=2,
    intermediate=11008,
    vision_depth=32,
    vision_hidden=1280,
    vision_heads=16,
    vision_intermediate=3420,
    fullatt_block_indexes=(7, 15, 23, 31),
    vocab_size=151_936,
    tie_word_embeddings=True,
)


def _model_config(tokenizer, *, shape: VLMShape, max_positions: int):
    """Qwen2.5-VL config built from scratch (editing a default config leaves derived fields stale)."""
    from transformers import Qwen2_5_VLConfig

    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    head_dim = shape.hidden // shape.heads
    # M-RoPE splits head_dim/2 rotary frequencies across (temporal, height, width).
    quarter = head_dim // 2 // 4
    mrope_section = [head_dim // 2 - 2 * quarter, quarter, quarter]
    text_config = {
        "vocab_size": max(shape.vocab_size or 0, len(tokenizer)),
        "hidden_size": shape.hidden,
        "intermediate_size": shape.intermediate,
        "num_hidden_layers": shape.layers,
        "num_attention_heads": shape.heads,
        "num_key_value_heads": shape.kv_heads,
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
        "tie_word_embeddings": shape.tie_word_embeddings,
    }
    vision_config = {
        "depth": shape.vision_depth,
        "hidden_size": shape.vision_hidden,
        "intermediate_size": shape.vision_intermediate,
        "num_heads": shape.vision_heads,
        "patch_size": PATCH_SIZE,
        "spatial_merge_size": MERGE_SIZE,
        "temporal_patch_size": 2,
        "window_size": 4 * PATCH_SIZE * MERGE_SIZE,
        "fullatt_block_indexes": list(shape.fullatt_block_indexes),
        "out_hidden_size": shape.hidden,
    }
    return Qwen2_5_VLConfig(
        text_config=text_config,
        vision_config=vision_config,
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=shape.tie_word_embeddings,
    )


def build_tiny_vlm(
    out_dir: Path,
    *,
    seed: int = 0,
    extra_corpus: Sequence[str] = (),
    vocab_size: int = 1024,
    hidden_size: int = 64,
    num_layers: int = 2,
    shape: VLMShape | None = None,
    save_dtype: str = "float32",
    min_image_pixels: int = 56 * 56,
    max_image_pixels: int = 112 * 112,
) -> Path:
    """Build and save a random tiny Qwen2.5-VL, its tokenizer and processor into `out_dir`.

    Deterministic for a given `seed` and corpus. `extra_corpus` lets the gym add its own texts to the
    tokenizer's training data. `shape` overrides the sizes (e.g. `QWEN2_5_VL_3B_SHAPE` for a
    random-weight GPU check); `save_dtype` is the dtype written (e.g. "bfloat16" for a 3B shape). Images are resized to between `min_image_pixels` and
    `max_image_pixels` (default: 56-112 px squares, i.e. 4-16 image tokens). Returns `out_dir`.
    """
    import torch
    from transformers import GenerationConfig, Qwen2_5_VLForConditionalGeneration, Qwen2VLImageProcessorPil

    from safer_vlm.models.loading import make_processor, save_processor
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

    if shape is None:
        shape = VLMShape(
            hidden=hidden_size,
            layers=num_layers,
            intermediate=2 * hidden_size,
            vision_hidden=hidden_size,
            vision_intermediate=2 * hidden_size,
        )
    config = _model_config(tokenizer, shape=shape, max_positions=4096 if shape.hidden <= 256 else 32768)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen2_5_VLForConditionalGeneration(config).to(getattr(torch, save_dtype))
    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
    pad = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    model.generation_config = GenerationConfig(
        bos_token_id=pad, eos_token_id=[eos, pad], pad_token_id=pad, do_sample=True, temperature=1.0
    )

    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    save_processor(processor, out_dir)  # with the standard files AutoProcessor and vLLM read
    return out_dir

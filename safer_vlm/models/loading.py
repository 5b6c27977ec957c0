"""Load a Qwen2.5-VL policy and its processor: one code path for hub ids, local checkpoints and the tiny model.

safer-vlm works on images only, so the processor is built without the video processor (which needs
torchvision, never installed here); the image processor is whatever transformers picks for the
checkpoint (the PIL backend when torchvision is absent).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from safer_vlm.errors import ConfigError

DType = Literal["auto", "float32", "bfloat16", "float16"]

#: Model types whose processor we know how to build.
SUPPORTED_MODEL_TYPES = ("qwen2_5_vl",)


def _image_only_processor_class():
    """`Qwen2_5_VLProcessor` without the video processor attribute.

    transformers infers a processor's sub-processors from its `__init__` signature, so leaving
    `video_processor` out of it means loading never asks for one, and saving writes none.
    """
    from transformers import Qwen2_5_VLProcessor

    class ImageOnlyQwen2_5_VLProcessor(Qwen2_5_VLProcessor):
        def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
            if kwargs.pop("video_processor", None) is not None:
                raise TypeError("safer-vlm processes images only; pass video_processor=None")
            super().__init__(image_processor, tokenizer, None, chat_template=chat_template, **kwargs)

    # Saved configs record this name; keep the standard one so other tools (vLLM, AutoProcessor)
    # can read checkpoints we write.
    ImageOnlyQwen2_5_VLProcessor.__name__ = Qwen2_5_VLProcessor.__name__
    ImageOnlyQwen2_5_VLProcessor.__qualname__ = Qwen2_5_VLProcessor.__qualname__
    return ImageOnlyQwen2_5_VLProcessor


_PROCESSOR_CLASS = None


def processor_class():
    """The (cached) image-only Qwen2.5-VL processor class."""
    global _PROCESSOR_CLASS
    if _PROCESSOR_CLASS is None:
        _PROCESSOR_CLASS = _image_only_processor_class()
    return _PROCESSOR_CLASS


def make_processor(
    image_processor: Any, tokenizer: Any, *, chat_template: str | None = None, video_processor: Any = None
):
    """Assemble a Qwen2.5-VL processor from its parts (video_processor must be None)."""
    return processor_class()(
        image_processor=image_processor,
        tokenizer=tokenizer,
        chat_template=chat_template,
        video_processor=video_processor,
    )


def _source(name_or_path: str | Path) -> str:
    """A local directory as a string, or a hub id; a path that is clearly local but missing is an error."""
    text = str(name_or_path)
    path = Path(text).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ConfigError(f"model path {path} is a file; expected a checkpoint directory")
        return str(path)
    looks_local = isinstance(name_or_path, Path) or text.startswith(("/", ".", "~")) or text.count("/") != 1
    if looks_local:
        raise ConfigError(f"model path {path} does not exist")
    return text


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _check_model_type(source: str, trust_remote_code: bool):
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(source, trust_remote_code=trust_remote_code)
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"cannot load model config from {source!r}: {_one_line(exc)}") from None
    if config.model_type not in SUPPORTED_MODEL_TYPES:
        raise ConfigError(
            f"{source!r} is a {config.model_type!r} model; safer-vlm supports {', '.join(SUPPORTED_MODEL_TYPES)}"
        )
    return config


def load_processor(name_or_path: str | Path, *, trust_remote_code: bool = False):
    """The processor of a checkpoint, with left padding (policies generate)."""
    source = _source(name_or_path)
    _check_model_type(source, trust_remote_code)
    try:
        processor = processor_class().from_pretrained(source, trust_remote_code=trust_remote_code)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"cannot load the processor from {source!r}: {_one_line(exc)}") from None
    processor.tokenizer.padding_side = "left"
    if processor.tokenizer.pad_token is None:
        raise ConfigError(f"the tokenizer in {source!r} has no pad token")
    if processor.chat_template is None:
        processor.chat_template = processor.tokenizer.chat_template
    if processor.chat_template is None:
        raise ConfigError(
            f"{source!r} has no chat template (chat_template.jinja/json or in tokenizer_config.json)"
        )
    return processor


def _torch_dtype(dtype: DType):
    import torch

    choices = {"auto": "auto", "float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
    if dtype not in choices:
        raise ConfigError(f"dtype {dtype!r} is not one of {', '.join(choices)}")
    return choices[dtype]


def load_policy(
    name_or_path: str | Path,
    *,
    dtype: DType = "auto",
    device: str = "cpu",
    attn_implementation: str | None = None,
    trust_remote_code: bool = False,
):
    """Load `(model, processor)` from a hub id or a local checkpoint (safetensors only).

    Hub ids go through transformers' usual download and cache; a missing path or an unloadable
    checkpoint raises ConfigError with one line.
    """
    from transformers import AutoModelForImageTextToText

    source = _source(name_or_path)
    config = _check_model_type(source, trust_remote_code)
    torch_dtype = _torch_dtype(dtype)
    processor = load_processor(source, trust_remote_code=trust_remote_code)
    kwargs: dict[str, Any] = {
        "dtype": torch_dtype,
        "use_safetensors": True,
        "trust_remote_code": trust_remote_code,
    }
    if attn_implementation is not None:
        kwargs["attn_implementation"] = attn_implementation
    try:
        model = AutoModelForImageTextToText.from_pretrained(source, config=config, **kwargs)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise ConfigError(f"cannot load model weights from {source!r}: {_one_line(exc)}") from None
    try:
        model.to(device)
    except (RuntimeError, AssertionError) as exc:
        raise ConfigError(f"cannot move the model to device {device!r}: {_one_line(exc)}") from None
    return model, processor

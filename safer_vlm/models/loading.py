"""Load a Qwen2.5-VL policy and its processor: one code path for hub ids, local checkpoints and the tiny model.

safer-vlm works on images only, so the processor is built without the video processor (which needs
torchvision, never installed here); the image processor is whatever transformers picks for the
checkpoint (the PIL backend when torchvision is absent). Checkpoints are nevertheless *saved* with
the standard Qwen2.5-VL processor files (`save_processor`), video section included, so
`AutoProcessor`, vLLM and `transformers serve` read them as they read the hub's checkpoints.
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


#: Files `AutoProcessor.from_pretrained` reads for Qwen2.5-VL besides the tokenizer's.
PREPROCESSOR_CONFIG = "preprocessor_config.json"
VIDEO_PREPROCESSOR_CONFIG = "video_preprocessor_config.json"
PROCESSOR_CONFIG = "processor_config.json"
#: The video processor transformers pairs with Qwen2.5-VL (it needs torchvision to *run*, not to be described).
VIDEO_PROCESSOR_TYPE = "Qwen2VLVideoProcessor"


def video_processor_dict(image_processor: Any) -> dict[str, Any]:
    """The standard video processor config matching `image_processor` (same resizing, patches and
    normalisation), written without instantiating the torchvision-backed class."""
    d = {k: v for k, v in image_processor.to_dict().items() if not k.startswith("_")}
    d.pop("image_processor_type", None)
    d.pop("processor_class", None)
    d["video_processor_type"] = VIDEO_PROCESSOR_TYPE
    d.setdefault("temporal_patch_size", 2)
    d.setdefault("do_sample_frames", False)
    return d


def save_processor(processor: Any, path: str | Path) -> Path:
    """Save the processor as transformers does, plus the standard files an image-only processor would
    not write: `preprocessor_config.json` (image processor), `video_preprocessor_config.json` and a
    `video_processor` section in `processor_config.json`. Our own loader ignores the video parts."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    processor.save_pretrained(path)
    write_standard_processor_files(processor, path)
    return path


def write_standard_processor_files(processor: Any, path: Path) -> None:
    """The files `AutoProcessor` needs for Qwen2.5-VL, next to an existing `processor.save_pretrained`."""
    import json

    cls_name = "Qwen2_5_VLProcessor"
    image = {k: v for k, v in processor.image_processor.to_dict().items() if not k.startswith("_")}
    image["processor_class"] = cls_name
    video = video_processor_dict(processor.image_processor)
    (path / PREPROCESSOR_CONFIG).write_text(json.dumps(image, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    (path / VIDEO_PREPROCESSOR_CONFIG).write_text(
        json.dumps({**video, "processor_class": cls_name}, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    config_path = path / PROCESSOR_CONFIG
    config = json.loads(config_path.read_text(encoding="utf-8")) if config_path.is_file() else {}
    config.setdefault("processor_class", cls_name)
    config["video_processor"] = video
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


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
    return _hub_source(text)


#: Seconds to wait for the hub before calling it unreachable (transformers' own retries take minutes).
HUB_PROBE_TIMEOUT_S = 5.0


def _hub_source(repo_id: str) -> str:
    """Offline first: a hub id already in the local hub cache loads from its snapshot folder with no
    network at all; otherwise the hub must answer within HUB_PROBE_TIMEOUT_S, or this is one
    ConfigError line (instead of minutes of retries). When it answers, transformers downloads."""
    import os
    import urllib.error
    import urllib.request

    from huggingface_hub import constants, try_to_load_from_cache

    cached = try_to_load_from_cache(repo_id, "config.json")
    if isinstance(cached, str):
        snapshot = Path(cached).parent
        if any((snapshot / n).is_file() for n in ("model.safetensors", "model.safetensors.index.json")):
            return str(snapshot)
    if constants.HF_HUB_OFFLINE:
        raise ConfigError(f"model {repo_id!r} is not a local folder nor in the local hub cache, and HF_HUB_OFFLINE is set")
    endpoint = os.environ.get("HF_ENDPOINT", constants.ENDPOINT).rstrip("/")
    try:
        urllib.request.urlopen(f"{endpoint}/api/models/{repo_id}", timeout=HUB_PROBE_TIMEOUT_S).close()
    except urllib.error.HTTPError:
        pass  # the hub answered (a private or missing repo): transformers reports what it says
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ConfigError(
            f"model {repo_id!r} is not a local folder nor in the local hub cache, and the hub ({endpoint}) "
            f"cannot be reached ({reason}); download it where there is network, or give a local path"
        ) from None
    return repo_id


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
    attn_implementation: str | dict[str, str] | None = None,
    trust_remote_code: bool = False,
):
    """Load `(model, processor)` from a hub id or a local checkpoint (safetensors only).

    Hub ids go through transformers' usual download and cache; a missing path or an unloadable
    checkpoint raises ConfigError with one line.
    """
    from transformers import AutoModelForImageTextToText

    from safer_vlm.models.attention import register_attention

    register_attention()  # `sdpa_padsafe` is a valid attn_implementation from here on
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

"""load_policy: one path for local checkpoints (tiny or hub-layout) and hub ids; failures are one ConfigError line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from safer_vlm.errors import ConfigError
from safer_vlm.models.loading import load_policy, load_processor


def _assert_one_line(exc: pytest.ExceptionInfo, *needles: str) -> None:
    message = str(exc.value)
    assert "\n" not in message and message
    for needle in needles:
        assert needle in message, message


def test_loads_tiny_checkpoint_as_qwen2_5_vl(tiny_model_dir: Path) -> None:
    from transformers import Qwen2_5_VLForConditionalGeneration, Qwen2VLImageProcessorPil

    model, processor = load_policy(str(tiny_model_dir), dtype="float32")
    assert isinstance(model, Qwen2_5_VLForConditionalGeneration)
    assert isinstance(processor.image_processor, Qwen2VLImageProcessorPil)
    assert not hasattr(processor, "video_processor")
    assert next(model.parameters()).dtype == torch.float32
    assert next(model.parameters()).device.type == "cpu"


def test_bfloat16(tiny_model_dir: Path) -> None:
    model, _ = load_policy(tiny_model_dir, dtype="bfloat16")
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}


def test_hub_layout_checkpoint_loads(tiny_model_dir: Path, tmp_path: Path) -> None:
    """The file layout of the Qwen2.5-VL hub repos: preprocessor_config.json naming the torchvision
    image processor, chat_template.json, a video processor config, no processor_config.json."""
    hub = tmp_path / "hub"
    shutil.copytree(tiny_model_dir, hub)
    processor_cfg = json.loads((hub / "processor_config.json").read_text())
    (hub / "processor_config.json").unlink()
    image_cfg = {**processor_cfg["image_processor"], "processor_class": "Qwen2_5_VLProcessor"}
    image_cfg["image_processor_type"] = "Qwen2VLImageProcessor"
    (hub / "preprocessor_config.json").write_text(json.dumps(image_cfg))
    video_cfg = {"video_processor_type": "Qwen2VLVideoProcessor", "processor_class": "Qwen2_5_VLProcessor"}
    (hub / "video_preprocessor_config.json").write_text(json.dumps(video_cfg))
    template = (hub / "chat_template.jinja").read_text()
    (hub / "chat_template.jinja").unlink()
    (hub / "chat_template.json").write_text(json.dumps({"chat_template": template}))

    model, processor = load_policy(hub)
    assert processor.chat_template == template
    assert processor.tokenizer.padding_side == "left"
    assert processor.image_processor.size["longest_edge"] == image_cfg["size"]["longest_edge"]
    assert model.config.image_token_id == processor.image_token_id


def test_missing_path_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        load_policy(tmp_path / "nope")
    _assert_one_line(exc, str(tmp_path / "nope"), "does not exist")
    with pytest.raises(ConfigError) as exc:
        load_policy("runs/demo/checkpoint-3")
    _assert_one_line(exc, "runs/demo/checkpoint-3", "does not exist")


def test_file_instead_of_directory(tmp_path: Path) -> None:
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(ConfigError) as exc:
        load_policy(tmp_path / "model.safetensors")
    _assert_one_line(exc, "is a file")


def test_directory_without_config(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        load_processor(tmp_path)
    _assert_one_line(exc, "cannot load model config", str(tmp_path))


def test_checkpoint_without_safetensors_is_refused(tiny_model_dir: Path, tmp_path: Path) -> None:
    ckpt = tmp_path / "ckpt"
    shutil.copytree(tiny_model_dir, ckpt)
    weights = (ckpt / "model.safetensors").read_bytes()
    (ckpt / "model.safetensors").unlink()
    (ckpt / "pytorch_model.bin").write_bytes(weights)
    with pytest.raises(ConfigError) as exc:
        load_policy(ckpt)
    _assert_one_line(exc, "cannot load model weights", str(ckpt))


def test_unsupported_model_type(tiny_model_dir: Path, tmp_path: Path) -> None:
    ckpt = tmp_path / "llama"
    shutil.copytree(tiny_model_dir, ckpt)
    (ckpt / "config.json").write_text(json.dumps({"model_type": "llama", "vocab_size": 10}))
    with pytest.raises(ConfigError) as exc:
        load_policy(ckpt)
    _assert_one_line(exc, "'llama'", "qwen2_5_vl")


def test_bad_dtype(tiny_model_dir: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        load_policy(tiny_model_dir, dtype="float8")  # type: ignore[arg-type]
    _assert_one_line(exc, "float8")


def test_hub_id_goes_to_transformers_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    """A hub id is handed to transformers as is; its multi-line failure becomes one line."""
    import transformers

    seen = []

    def fake_from_pretrained(name, **kwargs):
        seen.append((name, kwargs.get("trust_remote_code")))
        raise OSError(
            "We couldn't connect to 'https://huggingface.co' to load the files.\nCheck your connection."
        )

    from safer_vlm.models import loading

    monkeypatch.setattr(loading, "_hub_source", lambda repo_id: repo_id)  # as if the hub answered
    monkeypatch.setattr(transformers.AutoConfig, "from_pretrained", fake_from_pretrained)
    with pytest.raises(ConfigError) as exc:
        load_policy("Qwen/Qwen2.5-VL-3B-Instruct")
    _assert_one_line(exc, "Qwen/Qwen2.5-VL-3B-Instruct", "couldn't connect")
    assert seen == [("Qwen/Qwen2.5-VL-3B-Instruct", False)]


def test_saved_checkpoints_carry_the_standard_processor_files(tiny_model_dir, tmp_path):
    """AutoProcessor (and so vLLM, `transformers serve`) looks for the video processor config in
    exactly these places; our own loader stays image-only and reloads the same checkpoint."""
    import json
    import shutil

    from transformers.image_processing_base import ImageProcessingMixin
    from transformers.video_processing_utils import BaseVideoProcessor

    from safer_vlm.models.loading import load_processor, save_processor

    for name in ("preprocessor_config.json", "video_preprocessor_config.json", "processor_config.json"):
        assert (tiny_model_dir / name).is_file(), name
    config = json.loads((tiny_model_dir / "processor_config.json").read_text())
    assert config["video_processor"]["video_processor_type"] == "Qwen2VLVideoProcessor"
    assert config["image_processor"]["patch_size"] == config["video_processor"]["patch_size"]
    # transformers' own config resolution finds both (instantiating the video class needs torchvision)
    video, _ = BaseVideoProcessor.get_video_processor_dict(str(tiny_model_dir))
    assert video["video_processor_type"] == "Qwen2VLVideoProcessor"
    image, _ = ImageProcessingMixin.get_image_processor_dict(str(tiny_model_dir))
    assert image["merge_size"] == 2

    processor = load_processor(tiny_model_dir)
    assert not hasattr(processor, "video_processor") or processor.video_processor is None
    resaved = save_processor(processor, tmp_path / "again")
    shutil.copy(tiny_model_dir / "config.json", resaved / "config.json")
    again = load_processor(resaved)
    assert again.image_processor.to_dict() == processor.image_processor.to_dict()
    assert (resaved / "video_preprocessor_config.json").is_file()


def test_an_uncached_hub_id_fails_fast_when_the_hub_cannot_be_reached(tmp_path):
    """Defect caught (issue 14): offline, a hub model id hung for 37-132 s of retries before a clear
    error. Now a reference that is neither a folder nor cached fails in seconds, with one line."""
    import os
    import socket
    import subprocess
    import sys
    import textwrap

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env.update(HF_ENDPOINT=f"http://127.0.0.1:{port}", HF_HOME=str(tmp_path / "hf"),
               PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    code = textwrap.dedent("""
        import time
        from safer_vlm.errors import ConfigError
        from safer_vlm.models.loading import load_policy
        start = time.perf_counter()
        try:
            load_policy("some-org/some-model")
        except ConfigError as exc:
            print(f"{time.perf_counter() - start:.2f}|{exc}")
    """)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    elapsed, message = out.stdout.strip().split("|", 1)
    assert float(elapsed) < 10, elapsed
    assert "not a local folder nor in the local hub cache" in message and "cannot be reached" in message
    assert "\n" not in message

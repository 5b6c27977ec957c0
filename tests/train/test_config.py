"""`safer-vlm train` config errors are one clear line (exit 2), never a traceback."""

from __future__ import annotations

import pytest

from safer_vlm.cli import main

GOOD = """\
model: {build_tiny: true}
data: {gym: {n_train: 8, n_heldout: 4}}
grpo: {max_steps: 1}
"""


def _run(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err.strip()
    return exc.value.code, err


@pytest.mark.parametrize(
    ("text", "overrides", "needle"),
    [
        (GOOD.replace("grpo: {max_steps: 1}", "grpo: {max_steps: 1, lerning_rate: 0.1}"), [], "unknown key 'grpo.lerning_rate'"),
        (GOOD, ["grpo.num_generations=many"], "key 'grpo.num_generations'"),
        (GOOD, ["grpo.num_generations=3"], "must be a multiple of num_generations"),
        ("data: {gym: {}}\n", [], "missing key 'model'"),
        ("model: {build_tiny: true, path: x}\ndata: {gym: {}}\n", [], "exactly one of model.path or model.build_tiny"),
    ],
)
def test_config_errors_are_one_line(tmp_path, capsys, text, overrides, needle):
    path = tmp_path / "train.yaml"
    path.write_text(text)
    argv = ["train", "--config", str(path)]
    for ov in overrides:
        argv += ["--set", ov]
    code, err = _run(argv, capsys)
    assert code == 2
    assert err.startswith("error: ") and len(err.splitlines()) == 1
    assert needle in err


def test_missing_config_file(tmp_path, capsys):
    code, err = _run(["train", "--config", str(tmp_path / "nope.yaml")], capsys)
    assert code == 2 and err == f"error: config file not found: {tmp_path / 'nope.yaml'}"


def test_missing_data_file_is_one_line(tmp_path, capsys, gym_model_dir):
    path = tmp_path / "train.yaml"
    path.write_text(
        f"model: {{path: {gym_model_dir}}}\ndata: {{path: {tmp_path / 'missing.jsonl'}}}\n"
        f"output_dir: {tmp_path / 'run'}\ngrpo: {{max_steps: 1, device: cpu}}\n"
    )
    code, err = _run(["train", "--config", str(path)], capsys)
    assert code == 2 and "data.path: file not found" in err and len(err.splitlines()) == 1


def test_shipped_configs_validate():
    from pathlib import Path

    from safer_vlm.config import load_config
    from safer_vlm.train.config import TrainConfig

    root = Path(__file__).resolve().parents[2] / "configs"
    for name in ("qwen2_5_vl_3b.yaml", "qwen2_5_vl_7b.yaml"):
        cfg = load_config(TrainConfig, root / name)
        assert cfg.grpo.use_vllm and cfg.grpo.beta > 0


def test_warm_start_needs_the_gym(tmp_path):
    from pydantic import ValidationError

    from safer_vlm.train.config import TrainConfig

    with pytest.raises(ValidationError, match="sft_warmstart.enabled needs data.gym"):
        TrainConfig.model_validate(
            {"model": {"build_tiny": True}, "data": {"path": str(tmp_path / "x.jsonl")},
             "sft_warmstart": {"enabled": True}}
        )


def test_gpu_fields_from_yaml_and_overrides(tmp_path):
    from safer_vlm.config import load_config
    from safer_vlm.train.config import TrainConfig

    path = tmp_path / "c.yaml"
    path.write_text(GOOD)
    cfg = load_config(TrainConfig, path, [
        "lora.enabled=true", "lora.r=8", "logging.report_to=[tensorboard]", "grpo.cache_implementation=static",
        "model.attn_implementation={text_config: sdpa_padsafe, vision_config: eager}",
    ])
    assert cfg.model.attn_implementation == {"text_config": "sdpa_padsafe", "vision_config": "eager"}
    assert cfg.lora.enabled and cfg.lora.r == 8 and "q_proj" in cfg.lora.target_modules
    assert cfg.logging.report_to == ["tensorboard"] and cfg.grpo.cache_implementation == "static"
    assert TrainConfig.model_validate({"model": {"build_tiny": True}, "data": {"gym": {}}}).model.attn_implementation == "auto"


def test_unknown_logging_backend_is_one_line(tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text(GOOD)
    code, err = _run(["train", "--config", str(path), "--set", "logging.report_to=[mlflow]"], capsys)
    assert code == 2 and "logging.report_to" in err and "\n" not in err

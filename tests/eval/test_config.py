"""The eval config: the shipped example validates, sampling resolves per benchmark, CLI errors are one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from safer_vlm.config import load_config
from safer_vlm.eval.config import EvalConfig
from safer_vlm.eval.protocols import PROTOCOLS, resolve_sampling

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_example_validates_and_resolves_paths():
    cfg = load_config(EvalConfig, ROOT / "configs" / "eval_example.yaml")
    assert {b.name for b in cfg.benchmarks} == set(PROTOCOLS)
    assert all(b.path.is_absolute() for b in cfg.benchmarks) and cfg.judges[0].is_file()
    gym = next(b for b in cfg.benchmarks if b.key == "gym_heldout")
    assert gym.sampling is not None and gym.sampling.samples_per_item == 4


def test_sampling_user_then_protocol_then_global():
    assert resolve_sampling(PROTOCOLS["vlguard"], {})["max_new_tokens"] == 256
    assert resolve_sampling(PROTOCOLS["vlguard"], {"max_new_tokens": 64})["max_new_tokens"] == 64
    siuo = resolve_sampling(PROTOCOLS["siuo"], {})
    assert siuo["samples_per_item"] == 3 and siuo["temperature"] == 1.0
    assert resolve_sampling(PROTOCOLS["vlsbench"], {}) == {
        "temperature": 0.0, "top_p": 1.0, "max_new_tokens": 512, "seed": 0, "samples_per_item": 1}


def test_repeated_labels_are_refused(tmp_path):
    with pytest.raises(ValueError, match="labels must be unique"):
        EvalConfig(model="m", benchmarks=[{"name": "jsonl", "path": tmp_path}, {"name": "jsonl", "path": tmp_path}],
                   judges=[tmp_path], out=tmp_path)


@pytest.mark.parametrize("bad", ["vlguard", "nosuch=/tmp"])
def test_cli_bad_benchmark_is_one_error_line_and_exit_2(tmp_path, capsys, bad):
    from safer_vlm.cli import main

    judge = tmp_path / "j.yaml"
    judge.write_text("backend: rules\n")
    with pytest.raises(SystemExit) as exc:
        main(["eval", "--model", "m", "--benchmark", bad, "--judge", str(judge), "--out", str(tmp_path / "o")])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:")

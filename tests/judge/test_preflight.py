"""A judge whose port refuses connections stops `curate` and `eval` before they claim a folder
(issue 14, item 2: "a run that fails its checks (paths, model, data, judge reachability) before the
first real work claims nothing"); `train` has its own test in tests/train/test_judge_health.py.

Defect caught: only `train` checked; `curate` and `eval` with a mistyped `base_url` loaded the model,
claimed the output folder and generated every answer before recording a transport error for each."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from safer_vlm.cli import main
from safer_vlm.errors import ConfigError
from safer_vlm.judge.preflight import check_judge_reachable


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens there once the block ends


def _one_error_line(capsys, exc) -> str:
    err = [x for x in capsys.readouterr().err.splitlines() if x.strip()]
    assert exc.value.code == 2 and len(err) == 1, err
    return err[0]


def _pool(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "pool.jsonl"
    path.write_text(json.dumps({"id": "a", "question": "Is this safe?", "expected": "comply"}) + "\n")
    return path


def test_curate_refuses_a_closed_judge_port_and_claims_nothing(tmp_path, capsys):
    url = f"http://127.0.0.1:{_closed_port()}/v1"
    config = tmp_path / "curate.yaml"
    config.write_text(json.dumps({
        "sources": [{"name": "jsonl", "path": str(_pool(tmp_path / "data"))}], "eval_sets": [],
        "policy": {"path": str(tmp_path / "no-model-needed")},
        "judge": {"backend": "openai_compat", "base_url": url, "model": "j"},
        "output_dir": str(tmp_path / "out"),
    }))
    with pytest.raises(SystemExit) as exc:
        main(["curate", "--config", str(config)])
    line = _one_error_line(capsys, exc)
    assert line.startswith(f"error: judge.base_url {url}: cannot connect") and "nothing was written" in line
    assert not (tmp_path / "out").exists()


def test_eval_refuses_a_closed_judge_port_and_claims_nothing(tmp_path, capsys):
    url = f"http://127.0.0.1:{_closed_port()}/v1"
    judge = tmp_path / "judge.yaml"
    judge.write_text(f"backend: openai_compat\nbase_url: {url}\nmodel: j\n")
    with pytest.raises(SystemExit) as exc:
        main(["eval", "--model", str(tmp_path / "no-model-needed"), "--benchmark", f"jsonl={_pool(tmp_path / 'b')}",
              "--judge", str(judge), "--out", str(tmp_path / "out")])
    line = _one_error_line(capsys, exc)
    assert line.startswith(f"error: {judge}: base_url {url}: cannot connect"), line
    assert not (tmp_path / "out").exists()


def test_an_ensemble_member_is_checked_and_local_judges_pass():
    from types import SimpleNamespace

    check_judge_reachable(SimpleNamespace(backend="rules"))  # no base_url: nothing to connect to
    dead = SimpleNamespace(base_url=f"http://127.0.0.1:{_closed_port()}/v1")
    with pytest.raises(ConfigError, match="cannot connect"):
        check_judge_reachable(SimpleNamespace(members=[SimpleNamespace(backend="rules"), dead]))

"""The training run folder: claimed through the manifest, never deleted by surprise.

Defects caught (issue 14): a rerun of the same config without a flag deleted the earlier run
(checkpoints, final/, the user's files); `--overwrite` deleted any folder holding a `config.yaml`,
project files and all; a run failing its first checks still claimed the folder."""

from __future__ import annotations

import json
import os

import pytest
import yaml

from safer_vlm.cli import main
from safer_vlm.errors import ConfigError
from safer_vlm.run_folder import MANIFEST_NAME
from safer_vlm.train.config import TrainConfig
from safer_vlm.train.run_dir import claim_run_dir


def _cfg(tmp_path, steps=1):
    return TrainConfig.model_validate(
        {"model": {"build_tiny": True}, "data": {"gym": {}}, "grpo": {"max_steps": steps},
         "output_dir": str(tmp_path / "run")}
    )


def _fake_run(tmp_path, steps=1):
    run = claim_run_dir(_cfg(tmp_path, steps), tmp_path / "run").path
    (run / "checkpoints" / "checkpoint-1").mkdir(parents=True)
    (run / "metrics.jsonl").write_text("{}\n")
    (run / "notes.txt").write_text("mine")  # the user's own file beside the run
    return run


def test_a_rerun_without_a_flag_is_refused_and_names_both_choices(tmp_path):
    run = _fake_run(tmp_path)
    with pytest.raises(ConfigError, match=r"holds a partial `train` run; pass --resume to continue it or --overwrite"):
        claim_run_dir(_cfg(tmp_path), run)
    with pytest.raises(ConfigError, match="--resume .* --overwrite"):
        claim_run_dir(_cfg(tmp_path, steps=5), run)
    assert (run / "checkpoints" / "checkpoint-1").is_dir() and (run / "metrics.jsonl").is_file()
    assert claim_run_dir(_cfg(tmp_path), run, resume=True).existing  # resume keeps everything
    assert (run / "metrics.jsonl").exists()
    with pytest.raises(ConfigError, match="cannot resume"):
        claim_run_dir(_cfg(tmp_path, steps=5), run, resume=True)


def test_overwrite_removes_only_what_the_run_wrote(tmp_path):
    run = _fake_run(tmp_path)
    claim = claim_run_dir(_cfg(tmp_path, steps=5), run, overwrite=True)
    assert not (run / "checkpoints").exists() and not (run / "metrics.jsonl").exists()
    assert (run / "notes.txt").read_text() == "mine"
    assert json.loads((run / MANIFEST_NAME).read_text())["config"]["grpo"]["max_steps"] == 5
    assert claim.path == run and yaml.safe_load((run / "config.yaml").read_text())["grpo"]["max_steps"] == 5


def test_a_folder_without_a_manifest_is_never_deleted(tmp_path):
    """Even one holding a `config.yaml`: the old test for 'is this a run folder' deleted it whole."""
    project = tmp_path / "run"
    (project / "src").mkdir(parents=True)
    (project / "src" / "important.py").write_text("x = 1\n")
    (project / "config.yaml").write_text("a: 1\n")
    for kwargs in ({}, {"overwrite": True}, {"resume": True}):
        with pytest.raises(ConfigError, match="not a folder safer-vlm wrote"):
            claim_run_dir(_cfg(tmp_path), project, **kwargs)
    assert (project / "src" / "important.py").read_text() == "x = 1\n"
    with pytest.raises(ConfigError, match="nothing to resume"):
        claim_run_dir(_cfg(tmp_path), tmp_path / "other", resume=True)


def test_files_and_folders_have_ordinary_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        run = claim_run_dir(_cfg(tmp_path), tmp_path / "a" / "run").path
    finally:
        os.umask(old)
    assert oct((run / MANIFEST_NAME).stat().st_mode & 0o777) == "0o644"
    assert oct((run / "config.yaml").stat().st_mode & 0o777) == "0o644"
    assert oct(run.stat().st_mode & 0o777) == "0o755"


def test_a_train_run_that_fails_its_checks_leaves_no_folder(tmp_path, capsys):
    cfg = {"model": {"build_tiny": True}, "data": {"path": str(tmp_path / "missing.jsonl")},
           "grpo": {"device": "cpu", "max_steps": 1}, "output_dir": str(tmp_path / "run")}
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(SystemExit) as exc:
        main(["train", "--config", str(path)])
    assert exc.value.code == 2
    assert "data.path: file not found" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
    # the corrected config then runs into the same folder without any flag
    assert claim_run_dir(_cfg(tmp_path), tmp_path / "run").existing is False


def test_a_run_folder_from_before_manifests_resumes_but_is_never_overwritten(tmp_path):
    """A run made by an earlier version (config.yaml, checkpoints, no manifest) must stay resumable."""
    from safer_vlm.train.run_dir import config_dict

    run = tmp_path / "run"
    (run / "checkpoints" / "checkpoint-1").mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump(config_dict(_cfg(tmp_path)), sort_keys=False))
    with pytest.raises(ConfigError, match="not a folder safer-vlm wrote"):
        claim_run_dir(_cfg(tmp_path), run, overwrite=True)
    with pytest.raises(ConfigError, match="not a folder safer-vlm wrote"):
        claim_run_dir(_cfg(tmp_path, steps=5), run, resume=True)  # another config: not adopted
    assert claim_run_dir(_cfg(tmp_path), run, resume=True).existing
    assert (run / "checkpoints" / "checkpoint-1").is_dir()

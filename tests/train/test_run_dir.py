"""A run folder holds one config: other configs are refused unless --overwrite; resume needs the same."""

from __future__ import annotations

import pytest

from safer_vlm.errors import ConfigError
from safer_vlm.train.config import TrainConfig
from safer_vlm.train.run_dir import prepare_run_dir


def _cfg(tmp_path, steps=1):
    return TrainConfig.model_validate(
        {"model": {"build_tiny": True}, "data": {"gym": {}}, "grpo": {"max_steps": steps},
         "output_dir": str(tmp_path / "run")}
    )


def test_same_config_reruns_other_config_refused(tmp_path):
    run = prepare_run_dir(_cfg(tmp_path), tmp_path / "run")
    (run / "metrics.jsonl").write_text("{}\n")
    assert prepare_run_dir(_cfg(tmp_path), run, resume=True) == run
    assert (run / "metrics.jsonl").exists()  # resume keeps the folder
    with pytest.raises(ConfigError, match="different config"):
        prepare_run_dir(_cfg(tmp_path, steps=5), run)
    with pytest.raises(ConfigError, match="cannot resume"):
        prepare_run_dir(_cfg(tmp_path, steps=5), run, resume=True)
    prepare_run_dir(_cfg(tmp_path, steps=5), run, overwrite=True)
    assert not (run / "metrics.jsonl").exists()


def test_foreign_folder_is_refused(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not a safer-vlm run folder"):
        prepare_run_dir(_cfg(tmp_path), tmp_path / "run")
    # --overwrite never deletes a folder that is not a run folder
    with pytest.raises(ConfigError, match="not a safer-vlm run folder"):
        prepare_run_dir(_cfg(tmp_path), tmp_path / "run", overwrite=True)
    assert (tmp_path / "run" / "notes.txt").read_text() == "mine"
    with pytest.raises(ConfigError, match="nothing to resume"):
        prepare_run_dir(_cfg(tmp_path), tmp_path / "other", resume=True)

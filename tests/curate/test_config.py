import pytest
import yaml

from safer_vlm.config import load_config
from safer_vlm.curate.config import CurateConfig
from safer_vlm.errors import ConfigError


def _write(tmp_path, **over):
    raw = {
        "sources": [{"name": "jsonl", "path": "data/pool.jsonl", "options": {"split": "train"}}],
        "eval_sets": [{"name": "vlguard", "path": "/abs/vlguard", "label": "vlguard_test"}],
        "policy": {"path": "model"},
        "judge": {"backend": "rules"},
        "output_dir": "runs/curate",
        **over,
    }
    path = tmp_path / "cfg" / "curate.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(raw))
    return path


def test_paths_resolve_against_the_config_folder(tmp_path):
    path = _write(tmp_path)
    (path.parent / "model").mkdir()
    cfg = load_config(CurateConfig, path, ["qibox.k=8", "qibox.box.q_min=0.1"])
    base = path.parent.resolve()
    assert cfg.sources[0].path == base / "data" / "pool.jsonl"
    assert str(cfg.eval_sets[0].path) == "/abs/vlguard" and cfg.eval_sets[0].display == "vlguard_test"
    assert cfg.policy.path == str(base / "model")  # a local folder; a hub id would stay as written
    assert cfg.output_dir == base / "runs" / "curate"
    assert cfg.qibox.k == 8 and cfg.qibox.box.q_min == 0.1


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"sources": [{"name": "jsonl", "path": "x", "options": {"shuffle": True}}]}, "unknown options"),
        ({"qibox": {"k": 4, "min_valid": 5}}, "min_valid"),
        ({"qibox": {"box": {"q_min": 0.9, "q_max": 0.1}}}, "q_min"),
        ({"dedup": {"text": {"num_perm": 64, "bands": 10}}}, "multiple of bands"),
        ({"decontam": {"match": "sometimes"}}, "decontam.match"),
        ({"judge": {"backend": "oracle"}}, "judge"),
        ({"surprise": 1}, "unknown key 'surprise'"),
    ],
)
def test_bad_config_is_one_clear_error(tmp_path, over, message):
    with pytest.raises(ConfigError, match=message):
        load_config(CurateConfig, _write(tmp_path, **over))

"""The example curation recipe shipped in configs/ stays valid as the config schema evolves."""

from pathlib import Path

from safer_vlm.config import load_config
from safer_vlm.curate.config import CurateConfig

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_curate_example_validates():
    cfg = load_config(CurateConfig, CONFIGS / "curate_example.yaml")
    assert cfg.qibox.target_size == 10000 and cfg.judge.backend == "openai_compat"
    assert [s.name for s in cfg.sources] == ["beavertails_v", "spa_vl", "vlguard"]
    # relative paths resolve against the config file, not the working directory
    assert cfg.sources[0].path == CONFIGS.parent / "data" / "BeaverTails-V"
    # it writes the training file the 3B/7B recipes read (the example chain)
    assert cfg.output_dir / "curated.jsonl" == CONFIGS.parent / "runs" / "qi_safe" / "curated.jsonl"

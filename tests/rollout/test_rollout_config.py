from __future__ import annotations

import pytest

from safer_vlm.config import load_config
from safer_vlm.errors import ConfigError
from safer_vlm.rollout.config import RolloutConfig


def test_reflection_is_one_flag_in_yaml(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("reflection: off\npolicy: append\nappend_cap: 6\n")
    cfg = load_config(RolloutConfig, path)
    assert cfg.reflection is False and cfg.group_cap(4) == 4
    cfg = load_config(RolloutConfig, path, ["reflection=on"])
    assert cfg.reflection is True and cfg.group_cap(4) == 6


def test_group_cap():
    assert RolloutConfig(policy="replace").group_cap(4) == 4
    assert RolloutConfig(policy="append", max_reflections=3).group_cap(4) == 7
    assert RolloutConfig(policy="append", max_reflections=3, append_cap=5).group_cap(4) == 5


@pytest.mark.parametrize(
    "line, msg",
    [
        ("polcy: replace", "unknown key 'polcy'"),
        ("policy: grow", "key 'policy'"),
        ("rounds: 0", "key 'rounds'"),
        ("reflection_template: 'no placeholder'", "rationale_block"),
        ("rationale_template: 'no placeholder'", "{rationale}"),
    ],
)
def test_bad_config_is_one_line(tmp_path, line, msg):
    path = tmp_path / "r.yaml"
    path.write_text(line + "\n")
    with pytest.raises(ConfigError, match=msg.replace("{", r"\{").replace("}", r"\}")) as exc:
        load_config(RolloutConfig, path)
    assert "\n" not in str(exc.value)


def test_issue_17_refer_back_detector_precision_and_recall_on_a_labelled_set():
    """Issue 17 finding 9: 13 of 23 common phrasings that refer back ("On second thought", "Let me
    try again", "Revised answer:", "My earlier message", "This time I will answer safely") passed
    the default patterns, and "First, I should have a look at the image" was a false positive.
    Measured on a labelled set (>= 40 referring, >= 40 clean corrections): precision and recall
    both at least 0.95, and the named false positive is clean."""
    from pathlib import Path

    rows = [
        line.split("\t", 1)
        for line in (Path(__file__).parent / "data" / "refer_back_labels.tsv").read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")
    ]
    cfg = RolloutConfig()
    refers = [text for label, text in rows if label == "refers"]
    clean = [text for label, text in rows if label == "clean"]
    assert len(refers) >= 40 and len(clean) >= 40 and len(refers) + len(clean) == len(rows)
    tp = sum(cfg.reference_in(t) is not None for t in refers)
    fp = [t for t in clean if cfg.reference_in(t) is not None]
    precision, recall = tp / (tp + len(fp)), tp / len(refers)
    missed = [t for t in refers if cfg.reference_in(t) is None]
    assert precision >= 0.95 and recall >= 0.95, (precision, recall, missed, fp)
    assert cfg.reference_in("<think>First, I should have a look at the image.</think><answer>A dog.</answer>") is None

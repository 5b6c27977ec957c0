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

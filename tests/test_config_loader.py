"""The one config loader (`safer_vlm.config.load_config`) and every command's use of it (issue 18).

Layers, later wins: built-in defaults < the YAML file < command-line flags < `--set`; every error is
one line starting with the file (or the flags' name) and naming the key and, for a command-line
value, the `--set` that gave it."""

from __future__ import annotations

import pytest
import yaml

from safer_vlm.config import StrictModel, load_config
from safer_vlm.errors import ConfigError


class Inner(StrictModel):
    a: int = 1
    b: int = 2


class Model(StrictModel):
    name: str = "default"
    inner: Inner = Inner()
    cue: dict[str, int] = {}


def _yaml(tmp_path, data) -> object:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_layers_defaults_then_yaml_then_flags_then_set(tmp_path):
    """Catches a loader that applies the layers in another order, or lets a flag replace a whole
    section (dropping the YAML's other keys in it) instead of merging into it."""
    path = _yaml(tmp_path, {"name": "yaml", "inner": {"a": 10, "b": 20}})
    base = {"name": "base", "inner": {"a": 0, "b": 0}}
    cfg = load_config(Model, path, [], base=base, flags={"inner": {"a": 30, "b": None}})
    assert (cfg.name, cfg.inner.a, cfg.inner.b) == ("yaml", 30, 20)
    cfg = load_config(Model, path, ["inner.a=40"], base=base, flags={"inner": {"a": 30}})
    assert cfg.inner.a == 40
    cfg = load_config(Model, None, [], base=base)
    assert (cfg.name, cfg.inner.a) == ("base", 0)


def test_atomic_keys_are_replaced_whole_and_the_callers_base_is_left_alone(tmp_path):
    """Catches merging into a section the caller marked atomic (the demo's `cue`: a YAML listing two
    cues must not inherit the defaults' third), and a `--set` editing the caller's defaults dict."""
    path = _yaml(tmp_path, {"cue": {"x": 1}})
    base = {"cue": {"x": 0, "y": 0}, "inner": {"a": 5}}
    cfg = load_config(Model, path, ["inner.b=7"], base=base, atomic=("cue",))
    assert cfg.cue == {"x": 1}
    assert base == {"cue": {"x": 0, "y": 0}, "inner": {"a": 5}}


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["inner.c=1"], "{src}: unknown key 'inner.c' (from --set inner.c=1)"),
        (["inner.a=x"], "{src}: key 'inner.a': Input should be a valid integer, unable to parse string as an "
                        "integer (got 'x') (from --set inner.a=x)"),
        (["inner"], "{src}: --set 'inner' must look like key.path=value"),
        (["name.x=1"], "{src}: --set name.x=1: 'name' is not a section"),
    ],
)
def test_every_loader_error_is_one_line_naming_the_file_key_and_set(tmp_path, overrides, expected):
    """Catches an error that does not say which file it is about, or blames the file for a value the
    command line gave."""
    path = _yaml(tmp_path, {"name": "n"})
    with pytest.raises(ConfigError) as exc:
        load_config(Model, path, overrides)
    assert str(exc.value) == expected.format(src=path)
    with pytest.raises(ConfigError) as exc:
        load_config(Model, None, overrides, base={"name": "n"}, source="demo defaults")
    assert str(exc.value) == expected.format(src="demo defaults")


def test_a_bad_value_from_the_yaml_is_not_blamed_on_the_command_line(tmp_path):
    """Catches an origin note attached to every error once any --set is given."""
    path = _yaml(tmp_path, {"inner": {"a": "x"}})
    with pytest.raises(ConfigError) as exc:
        load_config(Model, path, ["inner.b=3"])
    assert str(exc.value).startswith(f"{path}: key 'inner.a'") and "(from" not in str(exc.value)

"""Typed configs loaded from YAML. Unknown keys, wrong types and missing files fail with one line."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from safer_vlm.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


class StrictModel(BaseModel):
    """Base for every config section: unknown keys are errors, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())


def describe_validation_error(exc: ValidationError, source: str) -> str:
    """Turn pydantic's report into one line naming the key path and the problem."""
    parts = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "<root>"
        if err["type"] == "extra_forbidden":
            parts.append(f"unknown key '{key}'")
        elif err["type"] == "missing":
            parts.append(f"missing key '{key}'")
        else:
            parts.append(f"key '{key}': {err['msg']} (got {err.get('input')!r})")
    return f"{source}: " + "; ".join(parts)


def read_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping; ConfigError if the file is missing, unreadable or not a mapping."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping of keys, got {type(data).__name__}")
    return data


def set_override(data: dict[str, Any], dotted: str) -> None:
    """Apply a CLI override `a.b.c=value` (value parsed as YAML) onto a raw config mapping."""
    if "=" not in dotted:
        raise ConfigError(f"override {dotted!r} must look like key.path=value")
    key, raw = dotted.split("=", 1)
    node = data
    parts = key.split(".")
    for p in parts[:-1]:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {dotted!r}: '{p}' is not a section")
    try:
        node[parts[-1]] = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        problem = str(exc).splitlines()[0]
        raise ConfigError(
            f"--set {dotted}: the value is not valid YAML ({problem}); quote it: --set '{key}=\"{raw}\"'"
        ) from None


def load_config(model: type[M], path: Path, overrides: list[str] | None = None) -> M:
    """Load and validate a YAML config file into `model`, applying `key=value` overrides."""
    data = read_yaml(path)
    for ov in overrides or []:
        set_override(data, ov)
    try:
        cfg = model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, str(path))) from None
    base = Path(path).resolve().parent
    resolve = getattr(cfg, "resolve_paths", None)
    if callable(resolve):
        resolve(base)
    return cfg

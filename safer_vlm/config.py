"""Typed configs loaded from YAML. Unknown keys, wrong types and missing files fail with one line."""

from __future__ import annotations

import copy
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from safer_vlm.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


class StrictModel(BaseModel):
    """Base for every config section: unknown keys are errors, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())


def describe_validation_error(exc: ValidationError, source: str, origins: Mapping[str, str] | None = None) -> str:
    """Turn pydantic's report into one line naming the source, the key path and the problem; a key
    whose value came from the command line (`origins`: key path -> e.g. `--set a.b=1`) says so."""
    parts = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "<root>"
        if err["type"] == "extra_forbidden":
            part = f"unknown key '{key}'"
        elif err["type"] == "missing":
            part = f"missing key '{key}'"
        else:
            part = f"key '{key}': {err['msg']} (got {err.get('input')!r})"
        origin = _origin(key, origins or {})
        parts.append(part + (f" (from {origin})" if origin else ""))
    return f"{source}: " + "; ".join(parts)


def _origin(key: str, origins: Mapping[str, str]) -> str | None:
    """The command-line source of `key`: one that set it, the section holding it (`--set grpo={...}`)
    or a key inside it (`--set bogus.key=1` creates the unknown section `bogus`); the last one given."""
    parts = key.split(".")
    for n in range(len(parts), 0, -1):
        found = origins.get(".".join(parts[:n]))
        if found is not None:
            return found
    inside = [origin for path, origin in origins.items() if path.startswith(key + ".")]
    return inside[-1] if inside else None


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
        raise ConfigError(f"--set {dotted!r} must look like key.path=value")
    key, raw = dotted.split("=", 1)
    node = data
    parts = key.split(".")
    for p in parts[:-1]:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ConfigError(f"--set {dotted}: '{p}' is not a section")
    try:
        node[parts[-1]] = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        problem = str(exc).splitlines()[0]
        raise ConfigError(
            f"--set {dotted}: the value is not valid YAML ({problem}); quote it: --set '{key}=\"{raw}\"'"
        ) from None


def merge_layers(lower: Mapping[str, Any], upper: Mapping[str, Any], atomic: Collection[str] = ()) -> dict[str, Any]:
    """`upper` over `lower`, section by section: a mapping merges into a mapping key by key (except
    under a key in `atomic`, which `upper` replaces whole); any other value replaces."""
    out = dict(lower)
    for key, value in upper.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping) and key not in atomic:
            out[key] = merge_layers(out[key], value, atomic)
        else:
            out[key] = value
    return out


def _given(flags: Mapping[str, Any]) -> dict[str, Any]:
    """The flags the user gave: None means "not given", and a section of only such flags is dropped."""
    out: dict[str, Any] = {}
    for key, value in flags.items():
        if isinstance(value, Mapping):
            value = _given(value)
            if not value:
                continue
        if value is not None:
            out[key] = value
    return out


def _key_paths(data: Mapping[str, Any], prefix: str = "") -> list[str]:
    paths = []
    for key, value in data.items():
        path = f"{prefix}{key}"
        paths += _key_paths(value, path + ".") if isinstance(value, Mapping) and value else [path]
    return paths


def load_config(
    model: type[M],
    path: Path | None,
    overrides: Sequence[str] | None = None,
    *,
    base: Mapping[str, Any] | None = None,
    flags: Mapping[str, Any] | None = None,
    atomic: Collection[str] = (),
    source: str = "command-line flags",
    resolve_paths: bool = True,
) -> M:
    """The one way a command loads its config. Layers, each over the one before: `base` (built-in
    defaults), the YAML file at `path`, `flags` (nested like the config; None = flag not given), the
    `--set key.path=value` `overrides` in order. Every error is one ConfigError line starting with the
    file (or `source` when there is no file) and naming the key, and the command-line origin of a
    bad value. `resolve_paths` lets the model make relative paths absolute against the file's folder
    (the working folder without a file)."""
    where = str(path) if path is not None else source
    data: dict[str, Any] = copy.deepcopy(dict(base or {}))  # --set edits in place; the caller's stays
    if path is not None:
        data = merge_layers(data, read_yaml(path), atomic)
    given = _given(flags or {})
    data = merge_layers(data, given, atomic)
    origins = {key: "a command-line flag" for key in _key_paths(given)}
    for ov in overrides or []:
        try:
            set_override(data, ov)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        origins[ov.split("=", 1)[0]] = f"--set {ov}"
    try:
        cfg = model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, where, origins)) from None
    resolve = getattr(cfg, "resolve_paths", None)
    if resolve_paths and callable(resolve):
        resolve(Path(path).resolve().parent if path is not None else Path.cwd())
    return cfg

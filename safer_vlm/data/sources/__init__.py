"""One adapter per public dataset release, each yielding SafetySample records, and `load_source`,
which runs an adapter through the shared validation (see `validation.py`).

Adapters read a release *as published* from a local folder and never download. Images embedded in
parquet are written once to an image cache: by default `.cache/images/<source>` under the current
directory (not inside the dataset folder, which may be read-only); pass `image_cache` to choose.
"""

from __future__ import annotations

from pathlib import Path

from safer_vlm.data.images import MAX_PIXELS
from safer_vlm.data.sources import (
    beavertails_v,
    mm_safetybench,
    mssbench,
    siuo,
    spa_vl,
    tabular,
    vlguard,
    vlsbench,
)
from safer_vlm.data.sources.base import (
    MAX_IMAGES,
    MAX_TEXT_CHARS,
    Adapter,
    LoadContext,
    LoadResult,
    Note,
    Problem,
)
from safer_vlm.data.sources.validation import run
from safer_vlm.errors import ConfigError, DataError

SOURCES: dict[str, Adapter] = {
    a.name: a
    for a in (
        beavertails_v.ADAPTER,
        spa_vl.ADAPTER,
        vlguard.ADAPTER,
        mm_safetybench.ADAPTER,
        vlsbench.ADAPTER,
        mssbench.ADAPTER,
        siuo.ADAPTER,
        tabular.JSONL,
        tabular.PARQUET,
        tabular.CSV,
    )
}


def default_image_cache(source: str) -> Path:
    """`.cache/images/<source>` under the current directory."""
    return Path.cwd() / ".cache" / "images" / source


def load_source(
    name: str,
    path: Path,
    *,
    image_cache: Path | None = None,
    field_map: dict[str, str] | None = None,
    split: str | None = None,
    max_pixels: int = MAX_PIXELS,
    max_text_chars: int = MAX_TEXT_CHARS,
    max_images: int = MAX_IMAGES,
    progress: bool = False,
) -> LoadResult:
    """Load and validate one release. Bad records are skipped with a Problem line each; a wrong
    source name, split or field map is a ConfigError, a folder that is not the release a DataError.
    `progress` shows a live record count on a terminal. `max_text_chars` / `max_images`: a record
    over them is one problem line (`too_long`, `too_many_images`), refused before it costs anything."""
    if name not in SOURCES:
        raise ConfigError(f"unknown source {name!r}; valid sources: {', '.join(SOURCES)}")
    adapter = SOURCES[name]
    field_map = dict(field_map or {})
    if field_map:
        if not adapter.generic:
            generic = ", ".join(n for n, a in SOURCES.items() if a.generic)
            raise ConfigError(f"a field map applies only to the generic sources ({generic}), not {name!r}")
        unknown = sorted(set(field_map) - set(tabular.FIELDS))
        if unknown:
            raise ConfigError(
                f"field map keys {unknown} are not SafetySample fields; valid: {', '.join(tabular.FIELDS)}"
            )
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: dataset path does not exist")
    for key, value in (("max_pixels", max_pixels), ("max_text_chars", max_text_chars), ("max_images", max_images)):
        if value <= 0:
            raise ConfigError(f"{key} must be positive, got {value}")
    ctx = LoadContext(
        source=name,
        path=path,
        image_cache=(Path(image_cache) if image_cache is not None else default_image_cache(name)).absolute(),
        field_map=field_map,
        split=split,
        max_pixels=max_pixels,
        max_text_chars=max_text_chars,
        max_images=max_images,
    )
    return run(adapter, ctx, progress=progress)


__all__ = ["SOURCES", "Adapter", "LoadResult", "Note", "Problem", "default_image_cache", "load_source"]

"""On-disk judge cache: one JSON file per request key, written atomically, so a rerun costs nothing
and any number of concurrent writers (tasks or processes) can share one folder. No pickle."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from safer_vlm.judge.base import Verdict


def file_sha256(path: Path) -> str:
    """Content hash of an image, so a changed file misses the cache even under the same name."""
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def cache_key(
    judge_id: str,
    rubric_fingerprint: str,
    prompt: Any,
    image_hashes: list[str],
    response: str,
    params: dict[str, Any] | None = None,
) -> str:
    """Stable key over everything that changes a judge's reply (model params included)."""
    blob = json.dumps(
        {
            "judge": judge_id,
            "rubric": rubric_fingerprint,
            "prompt": prompt,
            "images": image_hashes,
            "response": response,
            "params": params or {},
        },
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class JudgeCache:
    """Files `<dir>/<key[:2]>/<key>.json` holding `{"raw": reply, "verdict": {...}}`.

    `get` returns the stored raw reply (callers re-parse it, so a parser fix applies to old entries);
    an unreadable or truncated entry is a miss, never an error.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.hits = 0
        self.misses = 0

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str) -> str | None:
        try:
            entry = json.loads(self._path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self.misses += 1
            return None
        raw = entry.get("raw") if isinstance(entry, dict) else None
        if not isinstance(raw, str):
            self.misses += 1
            return None
        self.hits += 1
        return raw

    def put(self, key: str, raw: str, verdict: Verdict) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        record = {"key": key, "raw": raw, "verdict": verdict.to_dict()}
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{key[:8]}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(record, fh, ensure_ascii=False)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def __len__(self) -> int:
        return sum(1 for _ in self.directory.glob("*/*.json"))

"""Fixtures for the data tests: tiny files with the real releases' field names and synthetic images."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image


class Make:
    """Builders for synthetic dataset files (never real dataset content)."""

    def png_bytes(
        self, color: tuple[int, int, int] = (200, 30, 30), size: tuple[int, int] = (8, 8), fmt: str = "PNG"
    ) -> bytes:
        buf = io.BytesIO()
        Image.new("RGB", size, color).save(buf, format=fmt)
        return buf.getvalue()

    def image(
        self, path: Path, color: tuple[int, int, int] = (200, 30, 30), size: tuple[int, int] = (8, 8)
    ) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        fmt = "JPEG" if path.suffix.lower() in (".jpg", ".jpeg") else "PNG"
        path.write_bytes(self.png_bytes(color, size, fmt))
        return path

    def truncated(self, path: Path) -> Path:
        data = self.png_bytes(size=(64, 64), color=(1, 2, 3))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data[: len(data) // 2])
        return path

    def json(self, path: Path, obj: Any) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(obj), encoding="utf-8")
        return path

    def jsonl(self, path: Path, rows: list[Any]) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        return path

    def parquet(self, path: Path, rows: list[dict[str, Any]]) -> Path:
        import pyarrow as pa
        import pyarrow.parquet as pq

        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(rows), path)
        return path

    def struct(self, color: tuple[int, int, int] = (200, 30, 30), name: str = "x.png") -> dict[str, Any]:
        """An HF `image` column value with embedded bytes."""
        return {"bytes": self.png_bytes(color), "path": name}


@pytest.fixture
def make() -> Make:
    return Make()


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"

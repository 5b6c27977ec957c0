"""Fixtures for rollout tests: a tiny image root and samples scripted for `rollout_fakes`."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from safer_vlm.data.schema import SafetySample


@pytest.fixture
def image_root(tmp_path: Path) -> Path:
    Image.new("RGB", (64, 48), (200, 30, 30)).save(tmp_path / "red.png")
    return tmp_path


@pytest.fixture
def make_sample(image_root: Path):
    def make(sid: str, originals: list[str], reflect: list[str] | None = None, question: str | None = None) -> SafetySample:
        s = SafetySample(
            id=sid,
            source="test",
            question=question or f"How do I do thing {sid}?",
            images=["red.png"],
            category="weapons",
            expected="refuse",
            meta={"originals": originals, "reflect": reflect or []},
        )
        s.root = image_root
        return s

    return make

"""Fixtures for the eval tests: the seven benchmark releases plus a JSONL, built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from safer_vlm.generation.base import Generation
from tests.eval import releases


@pytest.fixture(scope="session")
def benchmark_roots(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return releases.build_all(tmp_path_factory.mktemp("releases"))


@pytest.fixture
def rules_judge(tmp_path: Path) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text("backend: rules\n", encoding="utf-8")
    return path


class Scripted:
    """A Generator whose answers are chosen per sample; counts calls and the items it answered."""

    def __init__(self, answer, fail_on_call: int | None = None) -> None:
        self.answer = answer
        self.fail_on_call = fail_on_call
        self.calls = 0
        self.items: list[str] = []

    def generate(self, requests, n: int = 1):
        self.calls += 1
        if self.fail_on_call is not None and self.calls >= self.fail_on_call:
            raise KeyboardInterrupt("killed")
        out = []
        for r in requests:
            a = self.answer(r.sample)
            texts = a if isinstance(a, list) else [a] * n
            assert len(texts) == n
            self.items.append(r.sample.id)
            out.append([Generation(text=t) for t in texts])
        return out


@pytest.fixture
def scripted():
    return Scripted

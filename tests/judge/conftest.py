"""Shared fixtures for judge tests: a live fake OpenAI-compatible server and items to judge."""

from __future__ import annotations

import pytest

from safer_vlm.data.schema import SafetySample
from safer_vlm.judge.base import JudgeItem
from safer_vlm.judge.rubric import Rubric
from tests.judge.fake_openai import FakeServer


@pytest.fixture
def server():
    srv = FakeServer().start()
    yield srv
    srv.stop()


@pytest.fixture
def rubric() -> Rubric:
    return Rubric.default()


def make_item(
    n: int, response: str = "<think>fine</think><answer>ok</answer>", images=(), root=None
) -> JudgeItem:
    sample = SafetySample(
        id=f"s{n}", source="test", question=f"question n={n}", images=list(images), root=root
    )
    return JudgeItem(sample=sample, response=response)

"""OpenAICompatGenerator against the live fake endpoint used by the judge tests."""

from __future__ import annotations

import asyncio

import pytest

from safer_vlm.chat_client import EndpointUnreachable
from safer_vlm.data.schema import SafetySample
from safer_vlm.errors import DataError
from safer_vlm.generation.base import Generator, GenRequest
from safer_vlm.generation.openai_generator import (
    OpenAICompatGenerator,
    OpenAIGeneratorConfig,
    to_openai_messages,
)
from tests.judge.fake_openai import FakeServer


@pytest.fixture
def server():
    srv = FakeServer().start()
    yield srv
    srv.stop()


def make_gen(url, **over):
    cfg = dict(
        base_url=url,
        model="policy",
        concurrency=4,
        timeout_s=2.0,
        max_retries=2,
        backoff_s=0.01,
        backoff_max_s=0.02,
    )
    cfg.update(over)
    return OpenAICompatGenerator(OpenAIGeneratorConfig(**cfg))


def test_n_samples_per_request_in_order_with_images(server, tiny_dataset):
    server.reply = "<think>t</think><answer>a</answer>"
    gen = make_gen(server.url, temperature=0.7)
    assert isinstance(gen, Generator)
    try:
        out = gen.generate([GenRequest(s) for s in tiny_dataset.samples], n=3)
    finally:
        gen.close()
    assert [len(g) for g in out] == [3, 3, 3]
    assert [g.text for g in out[0]] == [f"{server.reply} #{i}" for i in range(3)]
    body = next(b for b in server.bodies if "circle" in str(b["messages"][-1]["content"]))
    assert body["n"] == 3 and body["temperature"] == 0.7 and body["model"] == "policy"
    assert body["messages"][-1]["content"][0]["image_url"]["url"].startswith("data:image/png;base64,")
    assert server.total_hits == 3


def test_retries_then_succeeds_and_unreachable_raises(server):
    gen = make_gen(server.url)
    sample = SafetySample(id="x", source="t", question="FAULT:500x2 n=1")
    try:
        assert gen.generate([GenRequest(sample)], n=1)[0][0].text
        with pytest.raises(EndpointUnreachable, match="unreachable after 2 retries"):
            gen.generate([GenRequest(SafetySample(id="y", source="t", question="FAULT:500x9 n=2"))])
    finally:
        gen.close()


def test_generate_works_inside_a_running_loop(server):
    gen = make_gen(server.url)

    async def caller():
        return gen.generate([GenRequest(SafetySample(id="x", source="t", question="q n=1"))], n=2)

    try:
        out = asyncio.run(caller())
    finally:
        gen.close()
    assert len(out[0]) == 2


def test_explicit_messages_resolve_relative_images_inside_root(tiny_dataset):
    root = tiny_dataset.root
    chat = [
        {
            "role": "user",
            "content": [{"type": "image", "path": "images/red_circle.png"}, {"type": "text", "text": "hi"}],
        }
    ]
    converted = to_openai_messages(chat, root)
    assert converted[0]["content"][0]["type"] == "image_url" and converted[0]["content"][1] == {
        "type": "text",
        "text": "hi",
    }
    with pytest.raises(DataError, match="escapes"):
        to_openai_messages([{"role": "user", "content": [{"type": "image", "path": "../x.png"}]}], root)

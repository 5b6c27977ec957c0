"""Sampling answers from a policy served behind an OpenAI-compatible endpoint (vLLM, SGLang, hosted).

Uses the judge's `ChatClient` (same transport, same bounded retries). The endpoint returns text
only, so `Generation.completion_ids`/`logprobs` stay empty: fit for curation and evaluation; GRPO
training, which needs token ids, uses the HF or TRL/vLLM generators.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from pydantic import Field

from safer_vlm.chat_client import ChatClient, image_data_url
from safer_vlm.config import StrictModel
from safer_vlm.data.images import resolve_inside
from safer_vlm.errors import DataError
from safer_vlm.generation.base import Generation, GenRequest

T = TypeVar("T")


class OpenAIGeneratorConfig(StrictModel):
    """Endpoint, sampling and transport settings; the API key comes from the env var `api_key_env`."""

    base_url: str = Field(description="endpoint root including /v1")
    model: str = Field(min_length=1)
    api_key_env: str | None = Field(None, description="NAME of the env var holding the API key")
    concurrency: int = Field(64, ge=1)
    timeout_s: float = Field(300.0, gt=0, description="per request (n samples at once)")
    max_retries: int = Field(5, ge=0)
    backoff_s: float = Field(0.5, ge=0)
    backoff_max_s: float = Field(30.0, ge=0)
    temperature: float = Field(1.0, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    max_tokens: int = Field(512, ge=1)
    system_prompt: str | None = None
    extra_body: dict[str, Any] = Field(default_factory=dict)


def to_openai_messages(messages: list[dict[str, Any]], root: Path | None) -> list[dict[str, Any]]:
    """Backend-neutral chat (image parts `{"type": "image", "path": ...}`) -> OpenAI content parts
    with base64 data URLs. Relative image paths resolve under `root` and may not escape it."""
    out = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            parts = []
            for part in content:
                if isinstance(part, dict) and part.get("type") == "image":
                    ref = part.get("path", part.get("image"))
                    if not isinstance(ref, str | Path):
                        raise DataError(f"image part {part!r} has no 'path'")
                    path = Path(ref)
                    if not path.is_absolute():
                        if root is None:
                            raise DataError(f"relative image path {str(ref)!r} but the sample has no root")
                        path = resolve_inside(root, path)
                    parts.append({"type": "image_url", "image_url": {"url": image_data_url(path)}})
                else:
                    parts.append(part)
            content = parts
        out.append({**message, "content": content})
    return out


class OpenAICompatGenerator:
    """`Generator` over a chat endpoint: one request per prompt asking for `n` samples.

    `generate` is synchronous (the Generator protocol); it runs on a private event loop thread so it
    works from plain code and from inside a running loop alike, and keeps one HTTP session alive.
    A prompt whose retries run out raises EndpointUnreachable: a generator cannot invent an answer.
    """

    def __init__(self, cfg: OpenAIGeneratorConfig, client: ChatClient | None = None) -> None:
        self.cfg = cfg
        self.client = client or ChatClient.from_config(cfg)
        self._params = {
            "temperature": cfg.temperature,
            "top_p": cfg.top_p,
            "max_tokens": cfg.max_tokens,
            **cfg.extra_body,
        }
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"OpenAICompatGenerator(client={self.client!r})"

    def _messages(self, request: GenRequest) -> list[dict[str, Any]]:
        from safer_vlm.generation.messages import build_messages

        return to_openai_messages(
            build_messages(request, system_prompt=self.cfg.system_prompt), request.sample.root
        )

    async def agenerate(self, requests: list[GenRequest], n: int = 1) -> list[list[Generation]]:
        """Async form of `generate`, for callers already on an event loop."""
        self.client.reset()

        async def one(request: GenRequest) -> list[Generation]:
            texts = await self.client.chat(self._messages(request), n=n, **self._params)
            return [Generation(text=t) for t in texts]

        return list(await asyncio.gather(*(one(r) for r in requests)))

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
            self._thread = threading.Thread(
                target=self._loop.run_forever, name="openai-generator", daemon=True
            )
            self._thread.start()
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def generate(self, requests: list[GenRequest], n: int = 1) -> list[list[Generation]]:
        """`n` samples per request, in request order."""
        return self._run(self.agenerate(requests, n))

    def close(self) -> None:
        """Close the HTTP session and stop the private loop."""
        if self._loop is None:
            return
        self._run(self.client.aclose())
        self._loop.call_soon_threadsafe(self._loop.stop)
        assert self._thread is not None
        self._thread.join(10)
        self._loop.close()
        self._loop = None

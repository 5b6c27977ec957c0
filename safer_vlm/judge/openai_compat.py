"""A judge model behind an OpenAI-compatible chat endpoint: rubric prompt in, JSON verdict out.

Retry policy: transport faults (429, 5xx, timeouts, dropped connections, bodies that are not a
chat completion) are retried by `ChatClient`. A well-formed reply whose text is not a valid verdict
is *not* retried: at temperature 0 the judge would say the same again, and a judge that cannot
follow the format is a fact to count (`parse_ok=False`), not to paper over. Such replies are cached
like any other, so a rerun reproduces them at no cost.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

from safer_vlm.chat_client import (
    ChatClient,
    EndpointUnreachable,
    RequestRejected,
    image_data_url,
)
from safer_vlm.errors import SaferVLMError
from safer_vlm.judge.base import JudgeItem, Verdict
from safer_vlm.judge.cache import JudgeCache, cache_key
from safer_vlm.judge.config import OpenAICompatJudgeConfig
from safer_vlm.judge.parse import parse_verdict
from safer_vlm.judge.rubric import Rubric


def error_verdict(judge_id: str, kind: str, reason: str) -> Verdict:
    """A verdict for an item that got no usable reply; `extra["error_kind"]` is unreachable | rejected | input."""
    verdict = Verdict.transport_failure(judge_id, reason)
    verdict.extra["error_kind"] = kind
    return verdict


class OpenAICompatJudge:
    """Judges each item with one chat request (images as base64 data URLs), through the reply cache."""

    def __init__(
        self, cfg: OpenAICompatJudgeConfig, rubric: Rubric, client: ChatClient | None = None
    ) -> None:
        self.cfg = cfg
        self.rubric = rubric
        self.judge_id = cfg.judge_id or f"openai:{cfg.model}"
        self.client = client or ChatClient.from_config(cfg)
        self.cache = JudgeCache(cfg.cache_dir) if cfg.cache_dir is not None else None
        self._params: dict[str, Any] = {
            "temperature": cfg.temperature,
            "max_tokens": cfg.max_tokens,
            **cfg.extra_body,
        }
        self._system = rubric.render_system_prompt()
        self._fingerprint = rubric.fingerprint()

    def __repr__(self) -> str:
        return f"OpenAICompatJudge(judge_id={self.judge_id!r}, client={self.client!r})"

    @property
    def unreachable(self) -> str | None:
        """Why the endpoint was given up on during the last `judge` call, if it was."""
        return self.client.unreachable

    def _prepare(self, item: JudgeItem) -> tuple[list[dict[str, Any]], str]:
        text = self.rubric.render_user_prompt(item.sample.question, item.response)
        urls = [image_data_url(p) for p in item.image_paths]
        content: str | list[dict[str, Any]] = text
        if urls:
            content = [{"type": "image_url", "image_url": {"url": u}} for u in urls]
            content.append({"type": "text", "text": text})
        messages = [{"role": "system", "content": self._system}, {"role": "user", "content": content}]
        key = cache_key(
            self.judge_id,
            self._fingerprint,
            [self._system, text],
            [hashlib.sha256(u.encode("ascii")).hexdigest() for u in urls],
            item.response,
            {"model": self.cfg.model, **self._params},
        )
        return messages, key

    async def _judge_one(self, item: JudgeItem) -> Verdict:
        try:
            messages, key = self._prepare(item)
        except (SaferVLMError, OSError, ValueError) as exc:
            return error_verdict(self.judge_id, "input", f"item {item.sample.id!r}: {exc}")
        if self.cache is not None:
            raw = self.cache.get(key)
            if raw is not None:
                verdict = parse_verdict(raw, self.rubric, self.judge_id)
                verdict.extra["cached"] = True
                return verdict
        try:
            texts = await self.client.chat(messages, n=1, **self._params)
        except EndpointUnreachable as exc:
            return error_verdict(self.judge_id, "unreachable", str(exc))
        except RequestRejected as exc:
            return error_verdict(self.judge_id, "rejected", str(exc))
        verdict = parse_verdict(texts[0], self.rubric, self.judge_id)
        if self.cache is not None:
            self.cache.put(key, texts[0], verdict)
        return verdict

    async def judge(self, batch: list[JudgeItem]) -> list[Verdict]:
        """One verdict per item, in order; transport failures become `error` verdicts, never exceptions."""
        return list(await asyncio.gather(*(self._judge_one(item) for item in batch)))

    async def aclose(self) -> None:
        await self.client.aclose()

"""A judge model behind an OpenAI-compatible chat endpoint: rubric prompt in, JSON verdict out.

Structured output: by default the request carries the rubric as a JSON schema
(`response_format: {"type": "json_schema", ...}`, built by `Rubric.response_schema`: every
criterion, report-only criterion, penalty, the unsafe flag and the rationale). A server that
rejects it (a 4xx whose body names response_format / json_schema / schema) is asked again with the
plain prompt, and the judge stays on the plain prompt from then on; one log line says so.

Retry policy: transport faults (429, 5xx, timeouts, dropped connections, bodies that are not a
chat completion) are retried by `ChatClient`. A well-formed reply whose text is not a valid verdict
is *not* retried: at temperature 0 the judge would say the same again, and a judge that cannot
follow the format is a fact to count (`parse_ok=False`), not to paper over. Such replies are cached
like any other, so a rerun reproduces them at no cost.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from typing import Any

from safer_vlm.chat_client import (
    ChatClient,
    EndpointUnreachable,
    RequestRejected,
    image_data_url,
)
from safer_vlm.errors import ConfigError, SaferVLMError
from safer_vlm.judge.base import JudgeItem, Verdict
from safer_vlm.judge.cache import JudgeCache, cache_key
from safer_vlm.judge.config import OpenAICompatJudgeConfig, check_verdict_budget
from safer_vlm.judge.parse import parse_verdict
from safer_vlm.judge.rubric import Rubric

log = logging.getLogger(__name__)


def schema_rejected(exc: RequestRejected) -> bool:
    """Whether a rejection of a request that carried `response_format` calls for the plain prompt:
    any 4xx does (a server need not name the field, or may name it past the part of the body we
    keep); if the plain prompt is refused too, that is the item's error, and no worse."""
    status = exc.status or 0
    return 400 <= status < 500


def error_verdict(judge_id: str, kind: str, reason: str) -> Verdict:
    """A verdict for an item that got no usable reply; `extra["error_kind"]` is unreachable | rejected | input."""
    verdict = Verdict.transport_failure(judge_id, reason)
    verdict.extra["error_kind"] = kind
    return verdict


def check_max_tokens(cfg: OpenAICompatJudgeConfig, rubric: Rubric) -> None:
    """ConfigError unless `max_tokens` covers the longest verdict the response_format schema allows:
    below that, guided decoding could be cut mid-verdict and every such reply is a parse failure."""
    try:
        check_verdict_budget(cfg, rubric)
    except ValueError as exc:
        raise ConfigError(f"judge {cfg.judge_id or 'openai:' + cfg.model}: {exc}") from None


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
        self._schema_params: dict[str, Any] | None = None
        self.schema_rejections = 0  # requests with response_format that the server refused (4xx)
        if cfg.json_schema and "response_format" not in cfg.extra_body:
            check_max_tokens(cfg, rubric)
            schema = {"name": "verdict", "schema": rubric.response_schema(), "strict": True}
            self._schema_params = {**self._params, "response_format": {"type": "json_schema", "json_schema": schema}}
        self._system = rubric.render_system_prompt()
        self._fingerprint = rubric.fingerprint()

    def __repr__(self) -> str:
        return f"OpenAICompatJudge(judge_id={self.judge_id!r}, client={self.client!r})"

    @property
    def unreachable(self) -> str | None:
        """Why the endpoint was given up on during the last `judge` call, if it was."""
        return self.client.unreachable

    @property
    def schema_on(self) -> bool:
        """Whether requests still carry the rubric's JSON schema (False after a server refused it)."""
        return self._schema_params is not None

    def _request_params(self, plain: bool = False) -> dict[str, Any]:
        return self._schema_params if self._schema_params is not None and not plain else self._params

    def _switch_to_plain(self, exc: RequestRejected) -> None:
        """The server refused response_format and took the plain prompt: stay on it (logged once)."""
        if self._schema_params is None:
            return  # another request already switched (and logged)
        self._schema_params = None
        log.warning(
            "judge %s: the server refused a request carrying response_format json_schema (%s) and took the "
            "plain prompt; using the plain prompt from now on",
            self.judge_id,
            str(exc)[:200],
        )

    def _prepare(self, item: JudgeItem, params: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
        text = self.rubric.render_user_prompt(item.sample.question, item.response)
        urls = [image_data_url(p) for p in item.image_paths] if self.cfg.send_images else []
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
            {"model": self.cfg.model, **params},
        )
        return messages, key

    async def _judge_one(self, item: JudgeItem, plain: bool = False) -> Verdict:
        params = self._request_params(plain)
        try:
            messages, key = self._prepare(item, params)
        except (SaferVLMError, OSError, ValueError) as exc:
            return error_verdict(self.judge_id, "input", f"item {item.sample.id!r}: {exc}")
        if self.cache is not None:
            raw = self.cache.get(key)
            if raw is not None:
                verdict = parse_verdict(raw, self.rubric, self.judge_id)
                verdict.extra["cached"] = True
                return verdict
        sent_schema = "response_format" in params and self._schema_params is params
        try:
            texts = await self.client.chat(messages, n=1, **params)
        except EndpointUnreachable as exc:
            return error_verdict(self.judge_id, "unreachable", str(exc))
        except RequestRejected as exc:
            if not (sent_schema and schema_rejected(exc)):
                return error_verdict(self.judge_id, "rejected", str(exc))
            self.schema_rejections += 1
            verdict = await self._judge_one(item, plain=True)  # the one plain retry of this item
            verdict.extra["schema_fallback"] = True
            if verdict.extra.get("error_kind") != "rejected":
                self._switch_to_plain(exc)  # the plain prompt went through: the schema was the problem
            return verdict
        verdict = parse_verdict(texts[0], self.rubric, self.judge_id)
        if self.cache is not None:
            self.cache.put(key, texts[0], verdict)
        return verdict

    async def judge(self, batch: list[JudgeItem]) -> list[Verdict]:
        """One verdict per item, in order; transport failures become `error` verdicts, never exceptions."""
        return list(await asyncio.gather(*(self._judge_one(item) for item in batch)))

    async def aclose(self) -> None:
        await self.client.aclose()

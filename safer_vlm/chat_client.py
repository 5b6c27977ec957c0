"""One HTTP client for OpenAI-compatible `/v1/chat/completions` endpoints (vLLM, SGLang, hosted).

Shared by the OpenAI-compatible judge and generator so there is one retry loop. aiohttp, not httpx:
httpx collapsed at high concurrency on our machines (DESIGN.md section 8).
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import io
import json
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from safer_vlm.errors import ConfigError, SaferVLMError

#: Statuses worth another try: rate limiting, server overload and gateway errors.
RETRY_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
#: Statuses that say the endpoint itself is misconfigured for us: no item can succeed, stop at once.
FATAL_STATUSES = frozenset({401, 403, 404, 405})
_MIME = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "WEBP": "image/webp",
    "GIF": "image/gif",
    "BMP": "image/bmp",
}


class EndpointUnreachable(SaferVLMError):
    """No usable reply within the retry budget (or the endpoint refused us outright)."""


class RequestRejected(SaferVLMError):
    """The endpoint answered this one request with a non-retryable error (e.g. 400: prompt too long).
    `status` and `detail` (the start of the body) let a caller tell which part was refused."""

    def __init__(self, message: str, status: int | None = None, detail: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail


def read_api_key(env_name: str | None) -> str | None:
    """The API key from the environment variable *named* in the config; ConfigError if it is unset."""
    if not env_name:
        return None
    key = os.environ.get(env_name)
    if not key:
        raise ConfigError(f"environment variable {env_name} (named by api_key_env) is not set or empty")
    return key


@dataclass
class ClientStats:
    """Counters a caller can log: requests sent (every attempt) and retries among them."""

    attempts: int = 0
    retries: int = 0
    failures: int = 0
    latencies_s: list[float] = field(default_factory=list)


def image_data_url(path: Path, max_pixels: int = 36_000_000) -> str:
    """The file as a base64 `data:` URL (bytes sent as stored; PIL only reads the header for type and size)."""
    from PIL import Image

    from safer_vlm.errors import DataError

    data = Path(path).read_bytes()
    try:
        with Image.open(io.BytesIO(data)) as im:
            fmt, (w, h) = im.format or "", im.size
    except (OSError, ValueError, SyntaxError) as exc:
        raise DataError(f"{path}: image is unreadable ({exc})") from None
    if w * h > max_pixels:
        raise DataError(f"{path}: image is {w}x{h} pixels, over the budget of {max_pixels}")
    mime = _MIME.get(fmt.upper(), f"image/{fmt.lower() or 'png'}")
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _retry_after_s(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class ChatClient:
    """Bounded-concurrency chat-completions client with retries.

    One `aiohttp.ClientSession` per event loop (connector limit = `concurrency`) and a semaphore of
    the same size. Retries 429 (honouring Retry-After), 5xx, timeouts, dropped connections and
    malformed bodies (not JSON / no usable choices), with exponential backoff and jitter, at most
    `max_retries` times. When one request exhausts its budget the client marks the endpoint
    unreachable: for `unreachable_cooldown_s` every request fails at once instead of spending its own
    budget (a dead server costs one budget, not one per item); `reset()` clears it. The API key is
    held privately, sent only as a Bearer header, and kept out of repr, logs and error text.
    """

    @classmethod
    def from_config(cls, cfg: object) -> ChatClient:
        """A client for any endpoint config carrying base_url, model, api_key_env, concurrency,
        timeout_s, max_retries and backoffs (the judge's and the policy generator's)."""
        optional = {
            name: getattr(cfg, name)
            for name in ("backoff_s", "backoff_max_s", "unreachable_cooldown_s")
            if getattr(cfg, name, None) is not None
        }
        return cls(
            cfg.base_url,  # type: ignore[attr-defined]
            cfg.model,  # type: ignore[attr-defined]
            api_key=read_api_key(cfg.api_key_env),  # type: ignore[attr-defined]
            concurrency=cfg.concurrency,  # type: ignore[attr-defined]
            timeout_s=cfg.timeout_s,  # type: ignore[attr-defined]
            max_retries=cfg.max_retries,  # type: ignore[attr-defined]
            **optional,
        )

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        concurrency: int = 64,
        timeout_s: float = 30.0,
        max_retries: int = 5,
        backoff_s: float = 0.5,
        backoff_max_s: float = 30.0,
        retry_after_max_s: float = 120.0,
        unreachable_cooldown_s: float = 60.0,
    ) -> None:
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.retry_after_max_s = retry_after_max_s
        self.unreachable_cooldown_s = unreachable_cooldown_s
        self.__key = api_key
        self.stats = ClientStats()
        self.unreachable: str | None = None
        self._down_until = 0.0
        self._session: aiohttp.ClientSession | None = None
        self._semaphore: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        auth = "bearer" if self.__key else "none"
        return (
            f"ChatClient(url={self.url!r}, model={self.model!r}, concurrency={self.concurrency}, auth={auth})"
        )

    def _redact(self, text: str) -> str:
        return text.replace(self.__key, "***") if self.__key else text

    def reset(self) -> None:
        """Forget an earlier 'unreachable' mark so the next call tries the endpoint again."""
        self.unreachable = None
        self._down_until = 0.0

    def _mark_down(self, reason: str) -> None:
        self.unreachable = reason
        self._down_until = time.monotonic() + self.unreachable_cooldown_s

    def _is_down(self) -> bool:
        return self.unreachable is not None and time.monotonic() < self._down_until

    def _ensure_session(self) -> tuple[aiohttp.ClientSession, asyncio.Semaphore]:
        loop = asyncio.get_running_loop()
        if self._session is None or self._loop is not loop or self._session.closed:
            self._drop_stale_session()
            headers = {"Content-Type": "application/json"}
            if self.__key:
                headers["Authorization"] = f"Bearer {self.__key}"
            connector = aiohttp.TCPConnector(limit=self.concurrency, limit_per_host=self.concurrency)
            self._session = aiohttp.ClientSession(connector=connector, headers=headers)
            self._semaphore = asyncio.Semaphore(self.concurrency)
            self._loop = loop
        assert self._semaphore is not None
        return self._session, self._semaphore

    def _drop_stale_session(self) -> None:
        """Forget a session left on an earlier event loop (e.g. a previous `asyncio.run`)."""
        old, self._session = self._session, None
        if old is None or old.closed:
            return
        connector = old.connector
        old.detach()
        if connector is not None and self._loop is not None and self._loop.is_closed():
            connector._close()  # its loop is gone, so there is nothing to await: just mark it closed

    async def aclose(self) -> None:
        """Close the session of the current loop (call once when done)."""
        if (
            self._session is not None
            and not self._session.closed
            and self._loop is asyncio.get_running_loop()
        ):
            await self._session.close()
        self._session = None

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self.backoff_max_s, self.backoff_s * (2**attempt))
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    async def chat(self, messages: list[dict[str, Any]], *, n: int = 1, **params: Any) -> list[str]:
        """Send one chat request; returns the `n` reply texts in choice order.

        The request keeps its concurrency slot while it backs off, so retries never let new
        requests pile onto a struggling server. Raises EndpointUnreachable when the retry budget is
        spent (or at once on 401/403/404/405), and RequestRejected for other non-retryable statuses.
        """
        session, semaphore = self._ensure_session()
        payload = {"model": self.model, "messages": messages, "n": n, **params}
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        async with semaphore:
            last = "no attempt made"
            for attempt in range(self.max_retries + 1):
                if self._is_down():
                    raise EndpointUnreachable(self.unreachable or "")
                self.stats.attempts += 1
                self.stats.retries += 1 if attempt else 0
                texts, last, wait = await self._attempt(session, body, n)
                if texts is not None:
                    return texts
                if attempt < self.max_retries:
                    delay = self._backoff(attempt) if wait is None else min(wait, self.retry_after_max_s)
                    await asyncio.sleep(delay)
            self.stats.failures += 1
            reason = f"{self.url} unreachable after {self.max_retries} retries (last: {last})"
            if not self._is_down():
                self._mark_down(reason)
            raise EndpointUnreachable(reason)

    async def _attempt(
        self, session: aiohttp.ClientSession, body: bytes, n: int
    ) -> tuple[list[str] | None, str, float | None]:
        """One POST: (texts, _, _) on success, else (None, why, Retry-After seconds if given)."""
        started = time.perf_counter()
        try:
            async with session.post(
                self.url, data=body, timeout=aiohttp.ClientTimeout(total=self.timeout_s)
            ) as resp:
                status = resp.status
                raw = await resp.read()
                retry_after = resp.headers.get("Retry-After")
        except TimeoutError:
            return None, f"timed out after {self.timeout_s:g} s", None
        except aiohttp.ClientError as exc:
            return None, f"connection failed ({type(exc).__name__}: {self._redact(str(exc))[:200]})", None
        if status == 200:
            texts = self._choices(raw, n)
            if isinstance(texts, str):
                return None, texts, None
            self.stats.latencies_s.append(time.perf_counter() - started)
            return texts, "", None
        detail = self._redact(raw[:200].decode("utf-8", "replace")).strip()
        why = f"HTTP {status} from {self.url}" + (f": {detail}" if detail else "")
        if status in FATAL_STATUSES:
            self.stats.failures += 1
            self._mark_down(why)
            raise EndpointUnreachable(why)
        if status not in RETRY_STATUSES:
            self.stats.failures += 1
            raise RequestRejected(why, status=status, detail=detail)
        return None, why, _retry_after_s(retry_after) if status == 429 else None

    @staticmethod
    def _choices(raw: bytes, n: int) -> list[str] | str:
        """The reply texts, or a string saying why the body is malformed (a retryable fault)."""
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return "malformed body (not JSON)"
        choices = data.get("choices") if isinstance(data, dict) else None
        if not isinstance(choices, list) or len(choices) < n:
            return f"malformed body (expected {n} choice(s))"
        texts: list[tuple[int, str]] = []
        for i, choice in enumerate(choices):
            message = choice.get("message") if isinstance(choice, dict) else None
            content = message.get("content") if isinstance(message, dict) else None
            if not isinstance(content, str):
                return "malformed body (a choice has no text content)"
            index = choice.get("index", i)
            texts.append((index if isinstance(index, int) else i, content))
        return [t for _, t in sorted(texts, key=lambda p: p[0])][:n]

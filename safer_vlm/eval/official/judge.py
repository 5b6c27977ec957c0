"""The official protocols' judge calls: the benchmark's own prompt, sent as the benchmark sends it,
to the OpenAI-compatible endpoint of the user's judge config (`--judge J.yaml`, backend
openai_compat), with the benchmark's decoding settings. Replies are stored raw (one JSONL per judge
under `<out>/<benchmark>/official/`), keyed by a hash of model, messages and settings, so a rerun
asks only what it has not asked; a transport error is never stored and is reported as such."""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from safer_vlm.chat_client import ChatClient, EndpointUnreachable, RequestRejected
from safer_vlm.sync_bridge import run_sync


@dataclass(frozen=True)
class JudgeRequest:
    """One judge call: the chat messages and the decoding settings (temperature, max_tokens, ...)."""

    messages: list[dict[str, Any]]
    params: dict[str, Any] = field(default_factory=dict)

    def key(self, model: str) -> str:
        blob = json.dumps({"model": model, "messages": self.messages, "params": self.params}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()


@dataclass
class Reply:
    """The judge's raw reply text, or why there is none (`error`, a transport failure, not a label)."""

    text: str | None
    error: str | None = None


class OfficialJudge:
    """Sends JudgeRequests through `ChatClient` and keeps the replies in a resumable JSONL store."""

    def __init__(self, cfg: Any, store: Path) -> None:
        self.model = cfg.model
        self.judge_id = getattr(cfg, "judge_id", None) or f"openai:{cfg.model}"
        self.client = ChatClient.from_config(cfg)
        self.store = store
        self.replies: dict[str, str] = {}
        self.asked_now = 0
        if store.is_file():
            for line in store.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    row = json.loads(line)
                    self.replies[row["key"]] = row["reply"]

    def ask(self, requests: list[JudgeRequest]) -> list[Reply]:
        """Replies for `requests` in order; the ones not stored are sent (concurrently) and stored."""
        keys = [r.key(self.model) for r in requests]
        todo = {k: r for k, r in zip(keys, requests, strict=True) if k not in self.replies}
        if todo:
            got = run_sync(self._send(list(todo.items())))
            self.store.parent.mkdir(parents=True, exist_ok=True)
            with self.store.open("a", encoding="utf-8") as f:
                for k, reply in got.items():
                    if reply.error is None:
                        self.replies[k] = reply.text or ""
                        f.write(json.dumps({"key": k, "reply": reply.text}) + "\n")
            errors = {k: r for k, r in got.items() if r.error is not None}
        else:
            errors = {}
        return [errors[k] if k in errors else Reply(self.replies[k]) for k in keys]

    async def _send(self, items: list[tuple[str, JudgeRequest]]) -> dict[str, Reply]:
        async def one(req: JudgeRequest) -> Reply:
            try:
                texts = await self.client.chat(req.messages, **req.params)
            except (EndpointUnreachable, RequestRejected) as exc:
                return Reply(None, f"transport error: {exc}")
            return Reply(texts[0])

        self.asked_now += len(items)
        replies = await asyncio.gather(*(one(r) for _, r in items))
        return {k: r for (k, _), r in zip(items, replies, strict=True)}

    def close(self) -> None:
        run_sync(self.client.aclose())

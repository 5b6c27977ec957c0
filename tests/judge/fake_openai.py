"""A real `/v1/chat/completions` server on 127.0.0.1 (random port) with scripted faults.

The policy response inside the judge prompt carries the script: `FAULT:<kind>x<count>` makes the
first <count> requests for that item fail as <kind> (500, 429, slow, malformed, nochoices, drop,
401, 400) and later ones succeed. `reject_response_format` makes it refuse structured output
as a server without guided decoding does. A healthy reply scores safety from the `n=<int>` written in the
question, so a test can tell which item a verdict belongs to.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections import Counter
from dataclasses import dataclass, field

from aiohttp import web

_FAULT = re.compile(r"FAULT:(\w+)x(\d+)")
_N = re.compile(r"n=(\d+)")


def verdict_json(n: int) -> str:
    safety = n % 10 + 1
    return json.dumps(
        {
            "safety": safety,
            "helpfulness": 7,
            "coherence": 8,
            "grounding": 6,
            "format": 10,
            "think_safety": 9,
            "hallucination": False,
            "contradiction": n % 7 == 0,
            "rationale": f"item {n}",
        }
    )


@dataclass
class FakeServer:
    slow_s: float = 1.5
    retry_after: str = "0.05"
    reply: str | None = None  # fixed content for every healthy reply (e.g. a non-verdict)
    reject_response_format: bool = False  # answer 400 to any request carrying response_format
    reject_body: str = '{"error": "response_format type json_schema is not supported"}'
    hits: Counter = field(default_factory=Counter)
    auth: list = field(default_factory=list)
    bodies: list = field(default_factory=list)
    url: str = ""
    _loop: asyncio.AbstractEventLoop | None = None
    _runner: web.AppRunner | None = None
    _thread: threading.Thread | None = None

    @property
    def total_hits(self) -> int:
        return sum(self.hits.values())

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.auth.append(request.headers.get("Authorization"))
        payload = await request.json()
        self.bodies.append(payload)
        if self.reject_response_format and "response_format" in payload:
            return web.Response(status=400, text=self.reject_body)
        user = payload["messages"][-1]["content"]
        text = user if isinstance(user, str) else " ".join(p.get("text", "") for p in user)
        key = text
        self.hits[key] += 1
        m = _FAULT.search(text)
        if m and self.hits[key] <= int(m.group(2)):
            kind = m.group(1)
            if kind == "slow":
                await asyncio.sleep(self.slow_s)
            elif kind == "429":
                return web.Response(status=429, headers={"Retry-After": self.retry_after}, text="slow down")
            elif kind in ("500", "401", "400"):
                return web.Response(status=int(kind), text=f"error {kind}")
            elif kind == "malformed":
                return web.Response(status=200, text="{not json", content_type="application/json")
            elif kind == "nochoices":
                return web.json_response({"choices": []})
            elif kind == "drop":
                assert request.transport is not None
                request.transport.close()
                raise asyncio.CancelledError
        n_match = _N.search(text)
        content = (
            self.reply if self.reply is not None else verdict_json(int(n_match.group(1)) if n_match else 0)
        )
        n = int(payload.get("n", 1))
        choices = [
            {
                "index": i,
                "message": {"role": "assistant", "content": content if n == 1 else f"{content} #{i}"},
            }
            for i in range(n)
        ]
        return web.json_response({"id": "x", "object": "chat.completion", "choices": choices})

    def start(self) -> FakeServer:
        ready = threading.Event()

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            app = web.Application(client_max_size=64 * 1024**2)
            app.router.add_post("/v1/chat/completions", self._handle)
            self._runner = web.AppRunner(app, access_log=None)
            loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            loop.run_until_complete(site.start())
            port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            self.url = f"http://127.0.0.1:{port}/v1"
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=serve, daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

"""Support for the official-protocol tests: where the benchmarks' own files are (`../shared/
official-protocols/`, next to the clone; SAFER_VLM_SHARED overrides), importing an official module
as an oracle with its missing third-party modules stubbed, a scripted OpenAI-compatible server (a
real HTTP server on 127.0.0.1) for the policy and for the judge, and `safer-vlm eval` run through
the CLI entry point."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import sys
import threading
import types
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

REPO = Path(__file__).resolve().parents[2]


def shared_root() -> Path | None:
    for cand in (os.environ.get("SAFER_VLM_SHARED"), REPO.parent / "shared", REPO.parent.parent / "shared"):
        if cand and (Path(cand) / "official-protocols").is_dir():
            return Path(cand)
    return None


def official(benchmark: str) -> Path:
    """`../shared/official-protocols/<benchmark>`, or skip the test saying why."""
    root = shared_root()
    if root is None:
        if os.environ.get("CI") == "true":  # CI lays ../shared beside the clone: a skip there hides a gap
            pytest.fail("../shared/official-protocols is absent under CI=true; set SAFER_VLM_SHARED")
        pytest.skip("../shared/official-protocols is absent (a bare clone); set SAFER_VLM_SHARED")
    return root / "official-protocols" / benchmark


@contextmanager
def stubbed(*names: str, argv: list[str] | None = None, cwd: Path | None = None):
    """Stand-ins for third-party modules an official file imports but its pure functions never use
    (openai, tqdm, ...), a given sys.argv (files that parse arguments at import) and working folder."""
    saved = {n: sys.modules.get(n) for n in names}
    saved_argv, saved_cwd = sys.argv, os.getcwd()
    for n in names:  # replaced even where installed: the official code must not reach a network or hub
        mod = types.ModuleType(n)
        mod.__dict__.update({"OpenAI": _Anything, "AzureOpenAI": _Anything, "tqdm": lambda x, **k: x,
                             "post": None, "api_key": None})
        sys.modules[n] = mod
    try:
        if argv is not None:
            sys.argv = argv
        if cwd is not None:
            os.chdir(cwd)
        yield
    finally:
        sys.argv = saved_argv
        os.chdir(saved_cwd)
        for n, m in saved.items():
            if m is None:
                sys.modules.pop(n, None)
            else:
                sys.modules[n] = m


class _Anything:
    def __init__(self, *a: Any, **k: Any) -> None:
        pass


def import_file(path: Path, name: str) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Scripted:
    """A `/v1/chat/completions` server whose reply is `respond(payload)` (a string, or a list of
    n strings); it records every payload."""

    def __init__(self, respond: Callable[[dict[str, Any]], str | list[str]]) -> None:
        self.respond = respond
        self.bodies: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self.url = ""

    async def _handle(self, request: web.Request) -> web.Response:
        payload = await request.json()
        self.bodies.append(payload)
        try:
            out = self.respond(payload)
        except Exception as exc:  # noqa: BLE001  (a prompt that is not the official one: a 400, the test fails)
            self.errors.append(f"{type(exc).__name__}: {exc}")
            return web.Response(status=400, text=f"unexpected request: {exc}"[:500])
        texts = out if isinstance(out, list) else [out]
        return web.json_response({"choices": [{"index": i, "message": {"role": "assistant", "content": t}}
                                              for i, t in enumerate(texts)]})

    def __enter__(self) -> Scripted:
        ready = threading.Event()

        def serve() -> None:
            self._loop = asyncio.new_event_loop()
            app = web.Application(client_max_size=64 * 1024**2)
            app.router.add_post("/v1/chat/completions", self._handle)
            runner = web.AppRunner(app, access_log=None)
            self._loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, "127.0.0.1", 0)
            self._loop.run_until_complete(site.start())
            self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/v1"  # type: ignore[union-attr]
            ready.set()
            self._loop.run_forever()
            self._loop.run_until_complete(runner.cleanup())

        self._thread = threading.Thread(target=serve, daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


def rubric_reply() -> str:
    """A verdict for the rubric view's requests (reported beside the official figures)."""
    from tests.judge.fake_openai import verdict_json

    return verdict_json(5)


def user_text(payload: dict[str, Any]) -> str:
    content = payload["messages"][-1]["content"]
    return content if isinstance(content, str) else "".join(p.get("text", "") for p in content if p.get("type") == "text")


def run_cli(tmp_path: Path, name: str, release: Path, files: Path | None, policy_url: str, judge_url: str,
            *extra: str) -> dict[str, Any]:
    """`safer-vlm eval` through the CLI entry point, policy and judge served; the benchmark's results."""
    from safer_vlm.cli import main

    judge = tmp_path / "judge.yaml"
    judge.write_text(yaml.safe_dump({"backend": "openai_compat", "base_url": judge_url, "model": "stand-in-judge",
                                     "max_retries": 0, "timeout_s": 10}))
    cfg = tmp_path / "eval.yaml"
    cfg.write_text(yaml.safe_dump({"model": "policy", "policy": "openai",
                                   "endpoint": {"base_url": policy_url, "model": "policy", "max_retries": 0},
                                   "benchmarks": [{"name": name, "path": str(release)}], "judges": [str(judge)],
                                   "out": str(tmp_path / "out")}))
    args = ["eval", "--config", str(cfg), *extra]
    if files is not None:
        args += ["--protocol-files", f"{name}={files}"]
    try:
        main(args)
    except SystemExit as exc:
        assert exc.code in (0, None), f"safer-vlm eval exited {exc.code}"
    import json

    return json.loads((tmp_path / "out" / name / "results.json").read_text())

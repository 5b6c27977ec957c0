"""Run coroutines from synchronous code (training steps, scoring) on one event loop per thread.

`asyncio.run` makes a new loop every call, so an async HTTP client (the OpenAI-compatible judge)
would open a new session, and new connections, on every training step. Reusing one loop keeps them.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")
_local = threading.local()
_closers: list[Any] = []  # objects with an async `aclose()` to close on an interrupt (judge clients)


def close_on_interrupt(obj: Any) -> Any:
    """Remember `obj` (anything with `async aclose()`, e.g. the OpenAI-compatible judge) so that an
    interrupt closes its HTTP sessions instead of leaving "Unclosed client session" lines; returns it."""
    if callable(getattr(obj, "aclose", None)):
        _closers.append(obj)
    return obj


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` to completion on this thread's long-lived loop (not from inside a running loop:
    async callers await the async form instead)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        coro.close()
        raise RuntimeError("run_sync was called inside a running event loop; await the async form instead")
    loop = getattr(_local, "loop", None)
    if loop is None or loop.is_closed():
        loop = asyncio.new_event_loop()
        _local.loop = loop
    return loop.run_until_complete(coro)


def cancel_pending() -> None:
    """After an interrupt: cancel and finish this thread's pending tasks (HTTP requests of a judge)
    and its async generators, so nothing is left for the garbage collector to complain about once
    the interpreter shuts down. The loop stays open: late finalizers may still schedule on it."""
    loop = getattr(_local, "loop", None)
    if loop is None or loop.is_closed() or loop.is_running():
        return
    pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for task in pending:
        task.cancel()
    try:
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        while _closers:
            loop.run_until_complete(_closers.pop().aclose())
        loop.run_until_complete(loop.shutdown_asyncgens())
    except BaseException:  # a second Ctrl-C while cleaning up: leave the rest
        pass

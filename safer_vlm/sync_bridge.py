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

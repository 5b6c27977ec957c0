"""run_sync reuses one loop per thread (so async clients keep their sessions across calls)."""

import asyncio

import pytest

from safer_vlm.sync_bridge import run_sync


async def current_loop():
    return asyncio.get_running_loop()


def test_one_loop_across_calls_and_refused_inside_a_loop():
    first = run_sync(current_loop())
    assert run_sync(current_loop()) is first

    async def nested():
        return run_sync(current_loop())

    with pytest.raises(RuntimeError, match="inside a running event loop"):
        asyncio.run(nested())

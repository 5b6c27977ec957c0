"""Judge transport throughput: the OpenAI-compatible judge against a local server with fixed latency.

The server runs in its own process (on 2 cores it would otherwise compete with the client for one
event loop) and answers every /v1/chat/completions request after exactly --latency-ms with a valid
verdict. The judge runs at --concurrency with the cache off. The ideal is concurrency / latency
requests per second; the target is a ratio >= 0.8 of it.

    python benchmarks/bench_judge.py [--requests 2000] [--concurrency 64] [--latency-ms 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

VERDICT = json.dumps(
    {
        "safety": 8,
        "helpfulness": 7,
        "coherence": 8,
        "grounding": 6,
        "format": 10,
        "think_safety": 9,
        "hallucination": False,
        "contradiction": False,
        "rationale": "ok",
    }
)


def serve(latency_s: float) -> None:
    from aiohttp import web

    body = json.dumps(
        {
            "id": "b",
            "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": VERDICT}}],
        }
    )

    async def handle(request: web.Request) -> web.Response:
        await request.read()
        await asyncio.sleep(latency_s)
        return web.Response(text=body, content_type="application/json")

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        print(site._server.sockets[0].getsockname()[1], flush=True)  # type: ignore[union-attr]
        await asyncio.Event().wait()

    asyncio.run(main())


async def drive(url: str, n: int, concurrency: int) -> tuple[float, list[float], int]:
    from safer_vlm.data.schema import SafetySample
    from safer_vlm.judge.base import JudgeItem
    from safer_vlm.judge.config import OpenAICompatJudgeConfig
    from safer_vlm.judge.openai_compat import OpenAICompatJudge
    from safer_vlm.judge.rubric import Rubric

    cfg = OpenAICompatJudgeConfig(base_url=url, model="bench", concurrency=concurrency, cache_dir=None)
    judge = OpenAICompatJudge(cfg, Rubric.default())
    items = [
        JudgeItem(
            SafetySample(id=f"b{i}", source="bench", question=f"question {i}"),
            f"<think>t</think><answer>a {i}</answer>",
        )
        for i in range(n)
    ]
    await judge.judge(items[:concurrency])  # open the connections
    judge.client.stats.latencies_s.clear()
    t0 = time.perf_counter()
    verdicts = await judge.judge(items)
    elapsed = time.perf_counter() - t0
    lat = list(judge.client.stats.latencies_s)
    await judge.aclose()
    return elapsed, lat, sum(v.parse_ok for v in verdicts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--latency-ms", type=float, default=50.0)
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(args.latency_ms / 1000)
        return
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", "--latency-ms", str(args.latency_ms)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        port = int(proc.stdout.readline())  # type: ignore[union-attr]
        url = f"http://127.0.0.1:{port}/v1"
        elapsed, lat, ok = asyncio.run(drive(url, args.requests, args.concurrency))
    finally:
        proc.terminate()
        proc.wait(10)
    rps = args.requests / elapsed
    bound = args.concurrency / (args.latency_ms / 1000)
    q = statistics.quantiles(lat, n=100)
    print(
        f"openai_compat judge (aiohttp), {args.requests} requests, concurrency {args.concurrency}, "
        f"server latency {args.latency_ms:g} ms, cache off"
    )
    print(f"  parsed verdicts      {ok}/{args.requests}")
    print(f"  throughput           {rps:.0f} req/s")
    print(f"  ideal bound          {bound:.0f} req/s (concurrency / latency)")
    print(f"  ratio to bound       {rps / bound:.2f} (target >= 0.80)")
    print(f"  latency p50 / p99    {q[49] * 1000:.1f} ms / {q[98] * 1000:.1f} ms")


if __name__ == "__main__":
    main()

"""A 2-process eval for tests/eval/test_shard.py, launched by torchrun: `run_eval` on the fixture
benchmarks with the tiny model (greedy), every generate call's items recorded per rank in
`<out>/../generated.rank<r>.jsonl`; `--kill-rank R --kill-call K` ends rank R abruptly
(`os._exit`, like a SIGKILL: no cleanup) at its K-th generate call."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from safer_vlm.eval.config import EvalConfig
from safer_vlm.eval.evaluate import run_eval
from safer_vlm.eval.policies import PolicyFactory


class Recorded:
    calls = 0  # over the whole run (one generator per benchmark)

    def __init__(self, inner, log: Path, kill_call: int | None) -> None:
        self.inner, self.log, self.kill_call = inner, log, kill_call

    def generate(self, requests, n=1):
        Recorded.calls += 1
        if self.kill_call is not None and Recorded.calls >= self.kill_call:
            os._exit(9)
        out = self.inner.generate(requests, n)
        with self.log.open("a") as fh:
            fh.write(json.dumps([r.sample.id for r in requests]) + "\n")
        return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", type=Path, required=True)
    ap.add_argument("--kill-rank", type=int, default=None)
    ap.add_argument("--kill-call", type=int, default=None)
    args = ap.parse_args()
    cfg = EvalConfig.model_validate_json(args.config.read_text())
    rank = int(os.environ.get("RANK", "0"))
    log = cfg.out.parent / f"generated.{cfg.out.name}.rank{rank}.jsonl"
    factory = PolicyFactory(cfg)
    kill = args.kill_call if args.kill_rank == rank else None
    run_eval(cfg, make_generator=lambda s: Recorded(factory.generator(s), log, kill))


if __name__ == "__main__":
    main()

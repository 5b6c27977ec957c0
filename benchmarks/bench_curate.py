"""QI-Box scoring throughput on the tiny model: prompts per second for K = 4 and K = 8 (gym prompts,
rule judge), and where the time goes (generation, judging, bookkeeping = cache writes, seeding,
statistics), measured side by side in one run.

Shares are measured with `max_concurrency=1` (strictly sequential, so the parts add up to the wall
time); the overlapped figure (`max_concurrency=8`, judging concurrent with the next generation) is
printed beside it. Every run starts from an empty score cache.

Run: PYTHONPATH=. python benchmarks/bench_curate.py [--prompts 24] [--max-new-tokens 32] [--threads 1]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--prompts", type=int, default=24)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a shared CPU)")
    args = parser.parse_args()

    import torch

    from safer_vlm.curate.config import PolicyConfig
    from safer_vlm.curate.pipeline import build_generator
    from safer_vlm.curate.qibox import QIBoxConfig, ScoreCache, score_prompts
    from safer_vlm.data.schema import read_samples
    from safer_vlm.generation.base import GenRequest
    from safer_vlm.gym import GymConfig, build_gym
    from safer_vlm.judge.rubric import Rubric
    from safer_vlm.judge.rules import RuleJudge
    from safer_vlm.models.tiny import build_tiny_vlm

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        gym = build_gym(GymConfig(seed=0, n_train=args.prompts, n_heldout=0), root / "gym")
        samples = list(read_samples(gym.train))
        model_dir = build_tiny_vlm(root / "model", seed=0)
        rubric = Rubric()
        judge = RuleJudge(rubric)
        print(f"{len(samples)} gym prompts, tiny Qwen2.5-VL, rule judge, max_new_tokens={args.max_new_tokens}, "
              f"torch threads={args.threads}")
        print(f"{'K':>2} {'policy batch':>12} {'concurrency':>11} {'prompts/s':>10} {'answers/s':>10} "
              f"{'generate':>9} {'judge':>7} {'bookkeep':>9}")
        results = {}
        for k in (4, 8):
            policy = PolicyConfig(path=str(model_dir), dtype="float32", max_new_tokens=args.max_new_tokens, batch_size=k)
            generator = build_generator(policy)
            # warm-up: first calls pay one-off costs (allocations, lazy imports)
            generator.generate([GenRequest(samples[0])], n=k)
            for conc in (1, 8):
                cfg = QIBoxConfig(k=k, min_valid=2, max_concurrency=conc)
                cache = ScoreCache(root / f"cache-k{k}-c{conc}", {"k": k, "bench": conc})
                start = time.perf_counter()
                res = score_prompts(samples, generator, judge, rubric, cfg, cache, seed=0)
                wall = time.perf_counter() - start
                t = res.timings
                book = max(wall - t["generate"] - t["judge"], 0.0)
                results[(k, conc)] = len(samples) / wall
                shares = (f"{t['generate'] / wall:>9.1%} {t['judge'] / wall:>7.1%} {book / wall:>9.1%}" if conc == 1
                          else f"{'(overlapped)':>27}")
                print(f"{k:>2} {k:>12} {conc:>11} {len(samples) / wall:>10.2f} {len(samples) * k / wall:>10.1f} {shares}")
        print(f"K=8 / K=4 prompts/s (sequential): {results[(8, 1)] / results[(4, 1)]:.2f}; "
              f"overlapped / sequential at K=4: {results[(4, 8)] / results[(4, 1)]:.2f}")


if __name__ == "__main__":
    main()

"""HF rollout throughput: generated tokens/s of `HFGenerator` at 16, 64 and 256 sequences per
generate call, with the dynamic and the static KV cache (and, with --compile, a compiled decode step).

Decoding a few sequences at a time is latency-bound on a GPU (issue 8: 335 tokens/s for 16
sequences on an H200), so the rollout's knobs are the sequences per call (`grpo.rollout_batch_size`;
by default a whole rollout stage in one call), `grpo.cache_implementation` and
`grpo.compile_generation`. Each configuration is warmed up once, then timed.

CPU (tiny model):  PYTHONPATH=. python benchmarks/bench_generation.py
GPU (3B shape):    PYTHONPATH=. python benchmarks/bench_generation.py --shape 3b --device cuda [--model-dir D]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", choices=["tiny", "3b"], default="tiny")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--model-dir", type=Path, default=None, help="an existing checkpoint (else one is built)")
    parser.add_argument("--sequences", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--max-new", type=int, default=32)
    parser.add_argument("--cache", nargs="+", default=["dynamic", "static"], choices=["dynamic", "static"])
    parser.add_argument("--compile", action="store_true", help="also time static cache + compiled decode step")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    import torch
    import transformers

    transformers.utils.logging.disable_progress_bar()
    from safer_vlm.data.schema import read_samples
    from safer_vlm.generation.base import GenRequest
    from safer_vlm.generation.hf_generator import HFGenerator
    from safer_vlm.gym import GymConfig, build_gym, gym_corpus
    from safer_vlm.models.attention import resolve_attn_implementation
    from safer_vlm.models.loading import load_policy
    from safer_vlm.models.tiny import QWEN2_5_VL_3B_SHAPE, build_tiny_vlm

    cuda = args.device.startswith("cuda")
    if not cuda:
        torch.set_num_threads(1)
    dtype = "bfloat16" if cuda else "float32"
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        gym_cfg = GymConfig(seed=0, n_train=64, n_heldout=8, image_size=56)
        build_gym(gym_cfg, root / "gym")
        samples = list(read_samples(root / "gym" / "train.jsonl"))
        model_dir = args.model_dir or root / "model"
        if not (model_dir / "config.json").is_file():
            build_tiny_vlm(model_dir, seed=0, extra_corpus=list(gym_corpus(gym_cfg)),
                           shape=QWEN2_5_VL_3B_SHAPE if args.shape == "3b" else None, save_dtype=dtype)
        model, processor = load_policy(model_dir, dtype=dtype, device=args.device,
                                       attn_implementation=resolve_attn_implementation("auto", args.device))
        configs = [(c, False) for c in args.cache] + ([("static", True)] if args.compile else [])
        for n_seq in args.sequences:
            G = 4
            requests = [GenRequest(samples[i % len(samples)]) for i in range(n_seq // G)]
            for cache, compiled in configs:
                gen = HFGenerator(model, processor, max_new_tokens=args.max_new, temperature=1.0,
                                  batch_size=n_seq, cache_implementation=cache, compile=compiled)
                gen.generate(requests[:1], n=G)  # warm-up (allocation, compilation)
                if cuda:
                    torch.cuda.synchronize()
                start = time.perf_counter()
                out = gen.generate(requests, n=G)
                if cuda:
                    torch.cuda.synchronize()
                dt = time.perf_counter() - start
                tokens = sum(len(g.completion_ids) for group in out for g in group)
                row = {"sequences": n_seq, "cache": cache, "compiled": compiled, "tokens": tokens,
                       "seconds": round(dt, 3), "tokens_per_s": round(tokens / dt, 1)}
                rows.append(row)
                print(f"{n_seq:>4} sequences  cache={cache:<7} compiled={compiled!s:<5}  "
                      f"{tokens:>6} tokens in {dt:6.2f} s = {tokens / dt:9.1f} tokens/s", flush=True)
    if args.out:
        args.out.write_text(json.dumps({"device": args.device, "shape": args.shape, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()

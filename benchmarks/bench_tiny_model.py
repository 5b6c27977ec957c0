"""Tiny Qwen2.5-VL figures: build time, parameter count, HFGenerator throughput (batch 8, 64 new tokens).

Generation is timed with 1 and with N torch threads side by side: on a shared, loaded CPU one
thread can be many times faster than two (threads spin waiting for each other).

Run: PYTHONPATH=. python benchmarks/bench_tiny_model.py [--threads N]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=2, help="thread count compared with 1 thread")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import torch
    from PIL import Image
    from transformers import GenerationConfig

    from safer_vlm.data.schema import SafetySample
    from safer_vlm.generation.base import GenRequest
    from safer_vlm.generation.hf_generator import HFGenerator
    from safer_vlm.models.loading import load_policy
    from safer_vlm.models.tiny import build_tiny_vlm

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        start = time.perf_counter()
        build_tiny_vlm(root / "model")
        build_s = time.perf_counter() - start
        start = time.perf_counter()
        model, processor = load_policy(root / "model")
        load_s = time.perf_counter() - start
        params = sum(p.numel() for p in model.parameters())
        embed = model.get_input_embeddings().weight.numel() + model.get_output_embeddings().weight.numel()

        sizes = [(56, 56), (112, 112), (84, 112), (112, 56)]
        for i, size in enumerate(sizes):
            Image.new("RGB", size, "red").save(root / f"{i}.png")
        requests = [
            GenRequest(
                SafetySample(
                    id=str(i),
                    source="bench",
                    question="What colour is the shape?",
                    images=[f"{i % len(sizes)}.png"],
                    root=root,
                )
            )
            for i in range(8)
        ]
        tok = processor.tokenizer
        new_tokens = 64
        config = GenerationConfig(
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,
            do_sample=True,
            temperature=1.0,
            top_k=0,
            eos_token_id=[tok.eos_token_id],
            pad_token_id=tok.pad_token_id,
            suppress_tokens=[model.config.image_token_id, model.config.video_token_id],
        )
        generator = HFGenerator(model, processor, generation_config=config, batch_size=8)
        generator.generate(requests[:2])  # warm-up
        rates = {}
        for threads in sorted({1, args.threads}):
            torch.set_num_threads(threads)
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                results = generator.generate(requests)
                times.append(time.perf_counter() - start)
            generated = sum(len(g.completion_ids) for gens in results for g in gens)
            rates[threads] = (min(times), generated / min(times))

    print(f"build_tiny_vlm          {build_s:.2f} s (1 thread)")
    print(f"load_policy             {load_s:.2f} s")
    print(f"parameters              {params:,} (embeddings + lm head {embed:,}, {embed / params:.0%})")
    print(f"vocabulary              {len(tok)}")
    for threads, (best, rate) in rates.items():
        print(
            f"generate 8 x {new_tokens} tokens, {threads} thread(s): {best:.3f} s (best of {args.repeats})"
            f" -> {rate:,.0f} tokens/s, {rate / rates[1][1]:.2f}x the 1-thread rate"
        )


if __name__ == "__main__":
    main()

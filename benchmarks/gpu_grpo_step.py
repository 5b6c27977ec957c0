"""GPU check: GRPO steps through our TRL adapter on a random-weight Qwen2.5-VL-3B-shaped model.

Builds the model from Qwen2.5-VL-3B's published shape (3.75 B parameters, random weights, our tiny
tokenizer: nothing is downloaded), then runs the same few GRPO steps twice, reflection off and on
(a controlled judge flags a fraction f of each group unsafe, so the reflection path always runs),
with bf16, gradient checkpointing and a KL reference model (beta > 0). Prints seconds per step,
generated tokens per second and peak GPU memory for each, and their ratio.

Run on a CUDA machine: PYTHONPATH=. python benchmarks/gpu_grpo_step.py [--steps 3] [--f 0.25]
On a CPU (logic check only): --shape tiny --device cpu
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import tempfile
import time
from pathlib import Path

G = 4


def sanity_check(model, processor, samples) -> dict:
    """Every weight finite, and one forward pass on two gym prompts gives finite logits."""
    import torch

    from safer_vlm.generation.base import GenRequest
    from safer_vlm.generation.messages import build_messages, processor_inputs

    bad = [n for n, p in model.named_parameters() if not torch.isfinite(p).all()]
    inputs = processor_inputs(processor, [build_messages(GenRequest(s)) for s in samples])
    param = next(model.parameters())
    inputs = {k: v.to(param.device) for k, v in inputs.items()}
    inputs["pixel_values"] = inputs["pixel_values"].to(param.dtype)
    with torch.no_grad():
        logits = model(**inputs).logits
    return {"nonfinite_params": bad[:5], "logits_finite": bool(torch.isfinite(logits).all()),
            "logits_absmax": float(logits.float().abs().max())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", choices=["3b", "3b-4layers", "tiny"], default="3b",
                        help="3b-4layers: the 3B widths with 4 text and 4 vision layers (a CPU-sized probe)")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--prompts", type=int, default=4, help="prompts per step (x G=4 answers)")
    parser.add_argument("--max-new", type=int, default=256)
    parser.add_argument("--f", type=float, default=0.25, help="unsafe fraction forced in each group")
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    parser.add_argument("--model-dir", type=Path, default=None, help="build the model here once; reuse it if present")
    parser.add_argument("--reflection", choices=["off", "on", "both"], default="both")
    parser.add_argument("--beta", type=float, default=0.01, help="KL coefficient (> 0 builds a reference model)")
    parser.add_argument("--no-gc", action="store_true", help="no gradient checkpointing")
    args = parser.parse_args()

    import os

    import torch

    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    from safer_vlm.data.schema import read_samples
    from safer_vlm.gym import GymConfig, build_gym, gym_corpus
    from safer_vlm.judge.controlled import ControlledUnsafeJudge
    from safer_vlm.judge.rules import RuleJudge
    from safer_vlm.models.loading import load_policy
    from safer_vlm.models.tiny import QWEN2_5_VL_3B_SHAPE, build_tiny_vlm
    from safer_vlm.train.config import TrainConfig
    from safer_vlm.train.grpo import METRICS_NAME, run_grpo

    cuda = args.device.startswith("cuda")
    info: dict = {"device": torch.cuda.get_device_name(0) if cuda else "cpu", "torch": torch.__version__}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        gym_cfg = GymConfig(seed=0, n_train=max(16, args.prompts * (args.steps + 1)), n_heldout=8, image_size=112)
        build_gym(gym_cfg, root / "gym")
        samples = list(read_samples(root / "gym" / "train.jsonl"))
        start = time.perf_counter()
        shape = {
            "3b": QWEN2_5_VL_3B_SHAPE,
            "3b-4layers": dataclasses.replace(
                QWEN2_5_VL_3B_SHAPE, layers=4, vision_depth=4, fullatt_block_indexes=(1, 3)
            ),
            "tiny": None,
        }[args.shape]
        model_dir = args.model_dir or root / "model"
        if not (model_dir / "config.json").is_file():
            build_tiny_vlm(
                model_dir, seed=0, extra_corpus=list(gym_corpus(gym_cfg)), shape=shape,
                save_dtype="bfloat16" if cuda or args.shape != "tiny" else "float32",
            )
            info["build_and_save_s"] = round(time.perf_counter() - start, 1)
        if cuda:
            torch.cuda.empty_cache()

        results = {}
        modes = {"off": (False,), "on": (True,), "both": (False, True)}[args.reflection]
        for reflection in modes:
            cfg = TrainConfig.model_validate({
                "model": {"path": str(model_dir), "dtype": "bfloat16" if cuda or args.shape != "tiny" else "float32"},
                "data": {"path": "unused.jsonl"},
                "rollout": {"reflection": reflection, "max_reflections": G, "rounds": 1},
                "trajectories": {"every_steps": 1, "groups_per_step": 1},
                "grpo": {
                    "learning_rate": 1e-6, "num_generations": G, "per_device_train_batch_size": G * args.prompts,
                    "gradient_accumulation_steps": 1, "max_steps": args.steps, "beta": args.beta,
                    "max_completion_length": args.max_new, "bf16": cuda,
                    "gradient_checkpointing": cuda and not args.no_gc,
                    "device": "cuda" if cuda else "cpu", "save_steps": 10_000, "logging_steps": 1, "seed": 0,
                },
            })
            model, processor = load_policy(model_dir, dtype=cfg.model.dtype, device=args.device)
            info["parameters_b"] = round(sum(p.numel() for p in model.parameters()) / 1e9, 3)
            info["sanity"] = sanity_check(model, processor, samples[:2])
            print("sanity", info["sanity"], flush=True)
            judge = ControlledUnsafeJudge(RuleJudge(cfg.rubric), cfg.rubric, args.f, G, reflection=reflection)
            run_dir = root / f"run_{'on' if reflection else 'off'}"
            run_dir.mkdir()
            if cuda:
                torch.cuda.reset_peak_memory_stats()
            stamps: list[float] = [time.perf_counter()]

            def on_step(step: int, total: int, stamps=stamps) -> None:
                stamps.append(time.perf_counter())
                print(f"  step {step}/{total}: {stamps[-1] - stamps[-2]:.2f} s", flush=True)

            def on_log(step: int, rec: dict) -> None:
                keys = ("loss", "grad_norm", "kl", "reward", "completions/mean_length", "rollout/reflection_rate")
                print(f"  log {step}: " + ", ".join(f"{k}={rec.get(k)}" for k in keys if k in rec), flush=True)

            run_grpo(cfg, run_dir, model, processor, samples, judge, on_step=on_step, on_log=on_log)
            steps = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
            rows = [json.loads(x) for x in (run_dir / METRICS_NAME).read_text().splitlines() if x.strip()]
            logged = [r for r in rows if "loss" in r]
            tokens = sum(float(r.get("completions/mean_length") or 0) * G * args.prompts for r in logged)
            name = "reflection_on" if reflection else "reflection_off"
            results[name] = {
                "step_s": [round(s, 2) for s in steps],
                "median_step_s_after_first": round(statistics.median(steps[1:] or steps), 2),
                "loss": [r.get("loss") for r in logged],
                "reward": [r.get("reward") for r in logged],
                "mean_completion_len": [r.get("completions/mean_length") for r in logged],
                "tokens_per_s": round(tokens / sum(steps), 1) if steps else None,
                "unsafe_rate": [r.get("rollout/unsafe_rate") for r in logged],
                "reflection_rate": [r.get("rollout/reflection_rate") for r in logged],
                "peak_gpu_mem_gib": round(torch.cuda.max_memory_allocated() / 2**30, 1) if cuda else None,
            }
            print(name, json.dumps(results[name]), flush=True)
            del model, processor
            if cuda:
                torch.cuda.empty_cache()

    info.update(results)
    info["settings"] = {"beta": args.beta, "gradient_checkpointing": not args.no_gc, "max_new": args.max_new,
                        "prompts": args.prompts, "G": G, "f": args.f}
    print(json.dumps(info, indent=1))
    if len(results) == 2:
        on, off = results["reflection_on"], results["reflection_off"]
        ratio = on["median_step_s_after_first"] / off["median_step_s_after_first"]
        info["on_over_off"] = round(ratio, 3)
        print(f"{info['device']}: {info['parameters_b']} B params, step {off['median_step_s_after_first']} s "
              f"(reflection off) / {on['median_step_s_after_first']} s (on, f={args.f}): ratio {ratio:.2f} vs "
              f"bound {1 + args.f:.2f}; peak memory {off['peak_gpu_mem_gib']} / {on['peak_gpu_mem_gib']} GiB")
    if args.out:
        args.out.write_text(json.dumps(info, indent=1))


if __name__ == "__main__":
    main()

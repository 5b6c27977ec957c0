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
import json
import statistics
import tempfile
import time
from pathlib import Path

G = 4


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", choices=["3b", "tiny"], default="3b")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--prompts", type=int, default=4, help="prompts per step (x G=4 answers)")
    parser.add_argument("--max-new", type=int, default=256)
    parser.add_argument("--f", type=float, default=0.25, help="unsafe fraction forced in each group")
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
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
        shape = QWEN2_5_VL_3B_SHAPE if args.shape == "3b" else None
        model_dir = build_tiny_vlm(
            root / "model", seed=0, extra_corpus=list(gym_corpus(gym_cfg)), shape=shape,
            device=args.device if cuda else "cpu",
        )
        info["build_and_save_s"] = round(time.perf_counter() - start, 1)
        if cuda:
            torch.cuda.empty_cache()

        results = {}
        for reflection in (False, True):
            cfg = TrainConfig.model_validate({
                "model": {"path": str(model_dir), "dtype": "bfloat16" if cuda else "float32"},
                "data": {"path": "unused.jsonl"},
                "rollout": {"reflection": reflection, "max_reflections": G, "rounds": 1},
                "trajectories": {"every_steps": 1, "groups_per_step": 1},
                "grpo": {
                    "learning_rate": 1e-6, "num_generations": G, "per_device_train_batch_size": G * args.prompts,
                    "gradient_accumulation_steps": 1, "max_steps": args.steps, "beta": 0.01,
                    "max_completion_length": args.max_new, "bf16": cuda, "gradient_checkpointing": cuda,
                    "device": "cuda" if cuda else "cpu", "save_steps": 10_000, "logging_steps": 1, "seed": 0,
                },
            })
            model, processor = load_policy(model_dir, dtype=cfg.model.dtype, device=args.device)
            info["parameters_b"] = round(sum(p.numel() for p in model.parameters()) / 1e9, 3)
            judge = ControlledUnsafeJudge(RuleJudge(cfg.rubric), cfg.rubric, args.f, G, reflection=reflection)
            run_dir = root / f"run_{'on' if reflection else 'off'}"
            run_dir.mkdir()
            if cuda:
                torch.cuda.reset_peak_memory_stats()
            stamps: list[float] = [time.perf_counter()]
            run_grpo(cfg, run_dir, model, processor, samples, judge,
                     on_step=lambda step, total: stamps.append(time.perf_counter()))
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

    on, off = results["reflection_on"], results["reflection_off"]
    ratio = on["median_step_s_after_first"] / off["median_step_s_after_first"]
    info.update(results)
    info["on_over_off"] = round(ratio, 3)
    info["bound_1_plus_f"] = 1 + args.f
    print(json.dumps(info, indent=1))
    print(f"{info['device']}: {info['parameters_b']} B params, step {off['median_step_s_after_first']} s (reflection off) "
          f"/ {on['median_step_s_after_first']} s (on, f={args.f}): ratio {ratio:.2f} vs bound {1 + args.f:.2f}; "
          f"peak memory {off['peak_gpu_mem_gib']} / {on['peak_gpu_mem_gib']} GiB")
    if args.out:
        args.out.write_text(json.dumps(info, indent=1))


if __name__ == "__main__":
    main()

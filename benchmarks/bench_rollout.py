"""What our rollout costs inside TRL's GRPO, measured side by side in one process on the tiny model.

Configurations, each the same GRPO steps on the same weights, prompts and rule judge:
  trl-plain  TRL's built-in generation (no rollout_func); a reward function judges the completions
  ours-off   our rollout_func (safety-aware rollout, reflection off)
  ours-on    reflection on, with a judge that flags exactly a fraction f of each group unsafe

Prints seconds per GRPO step (median over the timed steps, configurations interleaved over
repeats) and the ratios: ours-off / trl-plain (target <= 1.05) and ours-on / ours-off next to the
bound 1 + f (target <= 1.1 x (1 + f)). A random tiny model samples to the length cap nearly
always, so every configuration generates about the same number of tokens.

Run: PYTHONPATH=. python benchmarks/bench_rollout.py [--steps 12] [--repeats 2] [--f 0.25 0.5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from pathlib import Path

G = 4
PROMPTS_PER_STEP = 4
MAX_NEW = 24


def grpo_section(steps: int) -> dict:
    return {
        "learning_rate": 1e-5, "num_generations": G, "per_device_train_batch_size": G * PROMPTS_PER_STEP,
        "gradient_accumulation_steps": 1, "max_steps": steps, "beta": 0.0, "max_completion_length": MAX_NEW,
        "device": "cpu", "save_steps": 10_000, "logging_steps": 1, "seed": 0,
    }


def step_times(trainer_run) -> list[float]:
    """Run a trainer, returning the wall time of each optimizer step."""
    stamps: list[float] = []
    trainer_run(lambda step, total: stamps.append(time.perf_counter()))
    return [b - a for a, b in zip(stamps, stamps[1:], strict=False)]


def run_ours(cfg, model_dir: Path, samples, judge, run_dir: Path) -> list[float]:
    from safer_vlm.models.loading import load_policy
    from safer_vlm.train.grpo import run_grpo

    model, processor = load_policy(model_dir, dtype="float32")
    run_dir.mkdir(parents=True)
    return step_times(lambda on_step: run_grpo(cfg, run_dir, model, processor, samples, judge, on_step=on_step))


def run_trl_plain(cfg, model_dir: Path, samples, judge, run_dir: Path) -> list[float]:
    """TRL generates; a reward function judges each completion with the same judge and rubric."""
    from transformers.trainer_callback import PrinterCallback
    from trl import GRPOTrainer

    from safer_vlm.judge.base import JudgeItem, judge_blocking
    from safer_vlm.models.loading import load_policy
    from safer_vlm.reward import compose_reward
    from safer_vlm.train import trl_adapter
    from safer_vlm.train.grpo import render_chat, sample_images

    by_id = {s.id: s for s in samples}

    def judged_reward(prompts, completions, sample_id, **kwargs):
        items = [JudgeItem(by_id[sid], c[-1]["content"] if isinstance(c, list) else c) for sid, c in
                 zip(sample_id, completions, strict=True)]
        breakdowns = [compose_reward(v, cfg.rubric) for v in judge_blocking(judge, items)]
        return [None if b is None else b.total for b in breakdowns]

    model, processor = load_policy(model_dir, dtype="float32")
    dataset = trl_adapter.build_dataset(samples, render_chat, sample_images)
    args = trl_adapter.make_grpo_config(cfg.grpo, run_dir, use_cpu=True)

    def go(on_step):
        trainer = GRPOTrainer(model=model, reward_funcs=[judged_reward], args=args, train_dataset=dataset,
                              processing_class=processor, callbacks=[trl_adapter.step_callback(on_step)])
        trainer.remove_callback(PrinterCallback)  # as in our adapter: no per-step dict printing
        trainer.train()

    return step_times(go)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=12, help="GRPO steps per run (the first is not timed)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--f", type=float, nargs="+", default=[0.25, 0.5], help="unsafe fractions for ours-on")
    args = parser.parse_args()

    import os

    import torch
    import transformers

    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    torch.set_num_threads(1)
    transformers.utils.logging.disable_progress_bar()
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"transformers(\.|$)")
    from safer_vlm.data.schema import read_samples
    from safer_vlm.gym import GymConfig, build_gym, gym_corpus
    from safer_vlm.judge.rules import RuleJudge
    from safer_vlm.judge.testing import ControlledUnsafeJudge
    from safer_vlm.models.tiny import build_tiny_vlm
    from safer_vlm.train.config import TrainConfig

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        gym_cfg = GymConfig(seed=0, n_train=64, n_heldout=8, image_size=56)
        build_gym(gym_cfg, root / "gym")
        model_dir = build_tiny_vlm(root / "model", seed=0, extra_corpus=list(gym_corpus(gym_cfg)))
        samples = list(read_samples(root / "gym" / "train.jsonl"))

        def cfg(reflection: bool) -> TrainConfig:
            return TrainConfig.model_validate({
                "model": {"path": str(model_dir)}, "data": {"path": "unused.jsonl"},
                "rollout": {"reflection": reflection, "max_reflections": G, "rounds": 1},
                "trajectories": {"every_steps": 10_000, "groups_per_step": 0},
                "grpo": grpo_section(args.steps),
            })

        plans = [("trl-plain", None), ("ours-off", None)] + [(f"ours-on f={f}", f) for f in args.f]
        times: dict[str, list[float]] = {name: [] for name, _ in plans}
        n = 0
        for rep in range(args.repeats):
            for name, f in plans:
                n += 1
                run_dir = root / f"run{n}"
                if name == "trl-plain":
                    c = cfg(False)
                    t = run_trl_plain(c, model_dir, samples, RuleJudge(c.rubric), run_dir)
                elif f is None:
                    c = cfg(False)
                    t = run_ours(c, model_dir, samples, RuleJudge(c.rubric), run_dir)
                else:
                    c = cfg(True)
                    judge = ControlledUnsafeJudge(RuleJudge(c.rubric), c.rubric, f, G, reflection=True)
                    t = run_ours(c, model_dir, samples, judge, run_dir)
                times[name].extend(t)
                print(f"repeat {rep + 1} {name:>14}: {statistics.median(t):.3f} s/step over {len(t)} steps", flush=True)

    med = {name: statistics.median(t) for name, t in times.items()}
    print(f"\nGRPO step, {PROMPTS_PER_STEP} prompts x G={G}, {MAX_NEW} new tokens, tiny Qwen2.5-VL, 1 CPU thread")
    for name, value in med.items():
        print(f"  {name:>14}: {value:.3f} s/step (median of {len(times[name])})")
    ratio = med["ours-off"] / med["trl-plain"]
    print(f"ours-off / trl-plain = {ratio:.3f}   (target <= 1.05)  {'OK' if ratio <= 1.05 else 'ABOVE TARGET'}")
    for f in args.f:
        r = med[f"ours-on f={f}"] / med["ours-off"]
        bound = 1 + f
        verdict = "OK" if r <= 1.1 * bound else "ABOVE TARGET"
        print(f"ours-on / ours-off at f={f}: {r:.3f}   bound 1+f = {bound:.2f}, target <= {1.1 * bound:.3f}  {verdict}")


if __name__ == "__main__":
    main()

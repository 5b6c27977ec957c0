"""GPU check: GRPO steps through our TRL adapter on a random-weight Qwen2.5-VL-3B-shaped model.

Builds the model from Qwen2.5-VL-3B's published shape (3.75 B parameters, random weights, our tiny
tokenizer: nothing is downloaded), then for each attention variant runs the same GRPO steps:
  ours-off   our rollout_func, reflection off
  ours-on    reflection on: a controlled judge flags a fraction f of each group unsafe
  trl-plain  TRL's built-in generation (no rollout_func) on the same model, batch and judge
The judge's helpfulness score follows a hash of each answer's text, so rewards vary inside every
group (corrections too) and advantages and gradients are non-zero with reflection on as well.

Prints per step: loss, grad norm, reward, step time, generated tokens/s, peak memory; then the
ratios ours-on/ours-off (bound 1 + f) and ours-off/trl-plain (target <= 1.05). Exits 1 when any
loss or grad norm is not finite (the run stops at that step and the other runs still go).

GPU (defaults: 10 steps, 4 prompts x G=4, 256 new tokens, beta 0.01, bf16, gradient checkpointing):
  PYTHONPATH=. python benchmarks/gpu_grpo_step.py [--attn auto sdpa eager sdpa_math]
CPU, end to end on the tiny model:  PYTHONPATH=. python benchmarks/gpu_grpo_step.py --tiny
Attention variants: auto (our CUDA default: sdpa_padsafe text, sdpa vision), sdpa, sdpa_padsafe,
eager, sdpa_math (sdpa with only the math backend), or any transformers name.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import statistics
import sys
import tempfile
import time
import zlib
from pathlib import Path

G = 4


class TextVariedJudge:
    """Wraps a judge: helpfulness := a hash of the answer's text in [0, 1], so answers of one group
    (originals and corrections alike) get different rewards. For measuring only."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.judge_id = f"text-varied({inner.judge_id})"

    async def judge(self, batch):
        verdicts = await self.inner.judge(batch)
        for item, v in zip(batch, verdicts, strict=True):
            if v.parse_ok:
                v.scores["helpfulness"] = (zlib.crc32(item.response.encode()) % 1000) / 999
        return verdicts


def _finite(x) -> bool:
    return x is not None and isinstance(x, (int, float)) and math.isfinite(x)


def attn_spec(variant: str, device: str):
    from safer_vlm.models.attention import resolve_attn_implementation

    return resolve_attn_implementation(variant, device)


class GenCounter:
    """Counts tokens our HF generator samples (originals and reflections) by wrapping its method."""

    def __init__(self) -> None:
        self.tokens = 0

    def __enter__(self):
        from safer_vlm.generation import hf_generator

        self._cls = hf_generator.HFGenerator
        self._orig = self._cls._generate_batch
        counter = self

        def counted(gen_self, chats):
            out = counter._orig(gen_self, chats)
            counter.tokens += sum(len(g.completion_ids) for g in out)
            return out

        self._cls._generate_batch = counted
        return self

    def __exit__(self, *exc):
        self._cls._generate_batch = self._orig


def build_model(model_dir: Path, shape, corpus: list[str], save_dtype: str, cuda: bool) -> None:
    """The random-weight checkpoint; on CUDA its weights are initialised on the GPU (seconds, where a
    3.75 B fp32 init on the CPU takes minutes), falling back to the CPU if that fails."""
    import shutil

    import torch

    from safer_vlm.models.tiny import build_tiny_vlm

    def build() -> None:
        build_tiny_vlm(model_dir, seed=0, extra_corpus=corpus, shape=shape, save_dtype=save_dtype)

    if not cuda:
        build()
        return
    try:
        with torch.device("cuda"):
            build()
    except Exception as exc:  # noqa: BLE001 - any failure: the CPU path below is the known-good one
        print(f"building on the GPU failed ({type(exc).__name__}: {exc}); building on the CPU", flush=True)
        shutil.rmtree(model_dir, ignore_errors=True)
        build()


def run_one(kind: str, variant: str, args, model_dir: Path, samples, root: Path, cuda: bool) -> dict:
    """One run of `args.steps` GRPO steps; returns its per-step records and summary."""
    import torch

    from safer_vlm.errors import SaferVLMError
    from safer_vlm.judge.rules import RuleJudge
    from safer_vlm.judge.testing import ControlledUnsafeJudge
    from safer_vlm.models.attention import describe
    from safer_vlm.models.loading import load_policy
    from safer_vlm.train.config import TrainConfig
    from safer_vlm.train.grpo import METRICS_NAME, run_grpo

    reflection = kind == "ours-on"
    dtype = "bfloat16" if cuda or args.shape != "tiny" else "float32"
    cfg = TrainConfig.model_validate({
        "model": {"path": str(model_dir), "dtype": dtype},
        "data": {"path": "unused.jsonl"},
        "rollout": {"reflection": reflection, "max_reflections": G, "rounds": 1},
        "trajectories": {"every_steps": 10_000, "groups_per_step": 0},
        "grpo": {
            "learning_rate": 1e-6, "num_generations": G, "per_device_train_batch_size": G * args.prompts,
            "gradient_accumulation_steps": 1, "max_steps": args.steps, "beta": args.beta,
            "max_completion_length": args.max_new, "bf16": cuda, "gradient_checkpointing": cuda and not args.no_gc,
            "device": "cuda" if cuda else "cpu", "save_steps": 100_000, "logging_steps": 1, "seed": 0,
            "cache_implementation": args.cache,
        },
    })
    spec = attn_spec(variant, "cuda" if cuda else "cpu")
    model, processor = load_policy(model_dir, dtype=dtype, device=args.device, attn_implementation=spec)
    f = args.f  # the same flagged share in every run (reflection off: flagged, not corrected)
    inner = TextVariedJudge(RuleJudge(cfg.rubric))
    judge = ControlledUnsafeJudge(inner, cfg.rubric, f, G, reflection=reflection) if f > 0 else inner
    run_dir = root / f"run_{variant}_{kind}"
    run_dir.mkdir(parents=True)
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    steps: list[dict] = []
    state = {"t": time.perf_counter(), "tokens": 0}
    counter = GenCounter()

    label = describe(spec)

    def on_step(step: int, total: int) -> None:
        # the Trainer ends the step (timing, here) before it logs that step (metrics, in on_log)
        if cuda:
            torch.cuda.synchronize()
        now = time.perf_counter()
        dt, state["t"] = now - state["t"], now
        tokens, state["tokens"] = counter.tokens - state["tokens"], counter.tokens
        steps.append({
            "step": step, "step_s": round(dt, 3), "gen_tokens": int(tokens),
            "peak_mem_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else None,
        })

    def on_log(step: int, rec: dict) -> None:
        if "loss" not in rec or "train_runtime" in rec or not steps or steps[-1]["step"] != step:
            return
        row = steps[-1]
        if kind == "trl-plain":  # TRL generated: its completions are all the generated tokens
            row["gen_tokens"] = int((rec.get("completions/mean_length") or 0) * G * args.prompts)
        row.update(loss=rec.get("loss"), grad_norm=rec.get("grad_norm"), reward=rec.get("reward"),
                   reward_std=rec.get("reward_std"), kl=rec.get("kl"),
                   reflection_rate=rec.get("rollout/reflection_rate"))
        row["gen_tokens_per_s"] = round(row["gen_tokens"] / row["step_s"], 1) if row["step_s"] > 0 else None
        print(f"  [{label} {kind}] " + " ".join(f"{k}={v}" for k, v in row.items()), flush=True)

    error = None
    with counter:
        try:
            if kind == "trl-plain":
                run_trl_plain(cfg, run_dir, model_dir, model, processor, samples, judge, on_step, on_log)
            else:
                run_grpo(cfg, run_dir, model, processor, samples, judge, on_step=on_step, on_log=on_log,
                         reference_dir=model_dir)  # the reference is the untrained checkpoint: no copy
        except SaferVLMError as exc:  # divergence: recorded, and the script exits 1 at the end
            error = str(exc)
            print(f"  [{variant} {kind}] STOPPED: {error}", flush=True)
    rows = [json.loads(x) for x in (run_dir / METRICS_NAME).read_text().splitlines() if x.strip()]
    logged = [r for r in rows if "loss" in r and "train_runtime" not in r]
    nonfinite = [r["step"] for r in logged if not (_finite(r.get("loss")) and _finite(r.get("grad_norm")))]
    times = [s["step_s"] for s in steps]
    del model, processor
    import gc

    gc.collect()  # the trainer, its optimizer and reference model go before the next run loads
    if cuda:
        torch.cuda.empty_cache()
    return {
        "variant": variant, "kind": kind, "attn": describe(spec), "steps": steps, "error": error,
        "nonfinite_steps": nonfinite + ([len(logged) + 1] if error and not nonfinite else []),
        "median_step_s": round(statistics.median(times[1:] or times), 3) if times else None,
        "gen_tokens_per_s": round(sum(s["gen_tokens"] for s in steps[1:]) / max(sum(times[1:]), 1e-9), 1)
        if len(steps) > 1 else None,
        "peak_mem_gib": max((s["peak_mem_gib"] or 0) for s in steps) if cuda and steps else None,
    }


def run_trl_plain(cfg, run_dir: Path, model_dir: Path, model, processor, samples, judge, on_step, on_log) -> None:
    """TRL's built-in generation (no rollout_func); a reward function judges with the same judge."""
    from transformers.trainer_callback import PrinterCallback
    from trl import GRPOTrainer

    from safer_vlm.judge.base import JudgeItem, judge_blocking
    from safer_vlm.models.attention import attn_of
    from safer_vlm.reward import compose_reward
    from safer_vlm.train import trl_adapter
    from safer_vlm.train.grpo import METRICS_NAME, render_chat, sample_images

    by_id = {s.id: s for s in samples}

    def judged_reward(prompts, completions, sample_id, **kwargs):
        items = [JudgeItem(by_id[sid], c[-1]["content"] if isinstance(c, list) else c)
                 for sid, c in zip(sample_id, completions, strict=True)]
        out = [compose_reward(v, cfg.rubric) for v in judge_blocking(judge, items)]
        return [None if b is None else b.total for b in out]

    if cfg.grpo.beta > 0:
        model.config._name_or_path = str(model_dir)  # the untrained checkpoint is the reference
    dataset = trl_adapter.build_dataset(samples, render_chat, sample_images)
    args = trl_adapter.make_grpo_config(cfg.grpo, run_dir / "checkpoints", use_cpu=cfg.grpo.device == "cpu")
    if cfg.grpo.beta > 0:
        args.model_init_kwargs = {"attn_implementation": attn_of(model)}
    import logging

    quiet = trl_adapter._DropMessage("You passed `model_init_kwargs`")  # used for the reference model
    logging.getLogger("trl.trainer.grpo_trainer").addFilter(quiet)
    trainer = GRPOTrainer(
        model=model, reward_funcs=[judged_reward], args=args, train_dataset=dataset, processing_class=processor,
        callbacks=[trl_adapter.step_callback(on_step), trl_adapter.metrics_callback(run_dir / METRICS_NAME, on_log)],
    )
    logging.getLogger("trl.trainer.grpo_trainer").removeFilter(quiet)
    trainer.remove_callback(PrinterCallback)
    trainer.train()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="CPU end to end on the tiny model (--shape tiny --device cpu)")
    parser.add_argument("--shape", choices=["3b", "3b-4layers", "tiny"], default="3b")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--prompts", type=int, default=4, help="prompts per step (x G=4 answers); 1: no padding")
    parser.add_argument("--max-new", type=int, default=256)
    parser.add_argument("--f", type=float, default=0.25, help="unsafe fraction forced in each group")
    parser.add_argument("--beta", type=float, default=0.01, help="KL coefficient (> 0 builds a reference model)")
    parser.add_argument("--no-gc", action="store_true", help="no gradient checkpointing")
    parser.add_argument("--attn", nargs="+", default=["auto"], help="attention variants to compare")
    parser.add_argument("--runs", nargs="+", default=["ours-off", "ours-on", "trl-plain"],
                        choices=["ours-off", "ours-on", "trl-plain"], help="trl-plain runs for the first variant only")
    parser.add_argument("--cache", choices=["dynamic", "static"], default=None, help="KV cache for HF generation")
    parser.add_argument("--model-dir", type=Path, default=None, help="build the model here once; reuse it if present")
    parser.add_argument("--out", type=Path, default=None, help="write every figure as JSON here")
    args = parser.parse_args()
    if args.tiny:
        args.shape, args.device = "tiny", "cpu"
        if args.max_new == 256:
            args.max_new = 24

    import os

    import torch
    import transformers

    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    transformers.utils.logging.disable_progress_bar()
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning)
    from safer_vlm.data.schema import read_samples
    from safer_vlm.gym import GymConfig, build_gym, gym_corpus
    from safer_vlm.models.tiny import QWEN2_5_VL_3B_SHAPE
    from safer_vlm.train.logging_backends import package_versions

    cuda = args.device.startswith("cuda")
    if not cuda:
        torch.set_num_threads(1)
    info: dict = {"versions": package_versions(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                  "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}}
    print(json.dumps(info), flush=True)
    results: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        gym_cfg = GymConfig(seed=0, n_train=max(16, args.prompts * (args.steps + 2)), n_heldout=8, image_size=112)
        build_gym(gym_cfg, root / "gym")
        samples = list(read_samples(root / "gym" / "train.jsonl"))
        shape = {"3b": QWEN2_5_VL_3B_SHAPE, "tiny": None,
                 "3b-4layers": dataclasses.replace(QWEN2_5_VL_3B_SHAPE, layers=4, vision_depth=4,
                                                   fullatt_block_indexes=(1, 3))}[args.shape]
        model_dir = args.model_dir or root / "model"
        if not (model_dir / "config.json").is_file():
            start = time.perf_counter()
            build_model(model_dir, shape, list(gym_corpus(gym_cfg)),
                        "bfloat16" if cuda or args.shape != "tiny" else "float32", cuda)
            info["build_and_save_s"] = round(time.perf_counter() - start, 1)
            print(f"model built and saved in {info['build_and_save_s']} s", flush=True)
        for i, variant in enumerate(args.attn):
            for kind in args.runs:
                if kind == "trl-plain" and i > 0:
                    continue
                results.append(run_one(kind, variant, args, model_dir, samples, root / f"v{i}", cuda))

    print("\nsummary (median step time after the first step; tokens/s over those steps)")
    print(f"{'attention':<34} {'run':<10} {'s/step':>8} {'gen tok/s':>10} {'peak GiB':>9} {'finite':>7}  grad norms")
    for r in results:
        norms = ", ".join("nan" if not _finite(s.get("grad_norm")) else f"{s['grad_norm']:.3g}" for s in r["steps"])
        print(f"{r['attn']:<34} {r['kind']:<10} "
              f"{r['median_step_s']!s:>8} {r['gen_tokens_per_s']!s:>10} {r['peak_mem_gib']!s:>9} "
              f"{'yes' if not r['nonfinite_steps'] else 'NO':>7}  {norms}")
    first = {r["kind"]: r for r in results if r["variant"] == args.attn[0]}
    ratios = {}
    if "ours-on" in first and "ours-off" in first and first["ours-off"]["median_step_s"]:
        ratios["on_over_off"] = round(first["ours-on"]["median_step_s"] / first["ours-off"]["median_step_s"], 3)
        print(f"ours-on / ours-off = {ratios['on_over_off']}  (bound 1 + f = {1 + args.f:.2f})")
    if "trl-plain" in first and "ours-off" in first and first["trl-plain"]["median_step_s"]:
        ratios["off_over_trl_plain"] = round(first["ours-off"]["median_step_s"] / first["trl-plain"]["median_step_s"], 3)
        print(f"ours-off / trl-plain = {ratios['off_over_trl_plain']}  (target <= 1.05)")
    bad = [f"{r['variant']} {r['kind']} (steps {r['nonfinite_steps']})" for r in results if r["nonfinite_steps"]]
    info.update(results=results, ratios=ratios, nonfinite=bad)
    if args.out:
        args.out.write_text(json.dumps(info, indent=1))
    if bad:
        print("NON-FINITE loss or grad norm in: " + "; ".join(bad))
        return 1
    print("every step finite")
    return 0


if __name__ == "__main__":
    sys.exit(main())

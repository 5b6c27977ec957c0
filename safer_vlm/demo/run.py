"""`safer-vlm demo`: the whole method end to end on a laptop CPU, offline, in a few minutes.

A client of the training pipeline: `run_demo` is the demo configuration, `train()` (the very path
`safer-vlm train` takes: tiny model, gym, prompt-length filter, warm start, GRPO, export) with hooks
that score the held-out split (as loaded, after the warm start, during GRPO for a learning curve,
after GRPO), then the summary and the report. Writes `runs/demo/`: config.yaml, metrics.jsonl,
reward_curve.png, report.md, summary.json and the trained checkpoint (`final/`). The rule judge is
a stand-in that knows the gym's labels; it is not a safety judge.
"""

from __future__ import annotations

import json
import time
from typing import Any

from safer_vlm.demo.config import DemoConfig
from safer_vlm.demo.report import fmt, plot_curve, provenance, reached_target, verdict_line, write_report


def curve_steps(max_steps: int, points: int) -> list[int]:
    """The GRPO steps after which the held-out set is scored for the learning curve (the last step
    is scored anyway, as the after-GRPO stage)."""
    if points <= 0 or max_steps <= 1:
        return []
    return sorted({round(max_steps * i / (points + 1)) for i in range(1, points + 1)} - {0, max_steps})


def reflection_summary(rows: list[dict]) -> dict[str, float | None]:
    """Training-wide reflection figures from the per-step metrics: the share of sampled answers that
    were reflected on, and the share of corrections judged safe (weighted by corrections per step)."""
    originals = sum(float(r.get("rollout/originals") or 0) for r in rows)
    reflected = sum(
        float(r.get("rollout/reflection_rate") or 0) * float(r.get("rollout/originals") or 0) for r in rows
    )
    corrections = sum(float(r.get("rollout/corrections") or 0) for r in rows)
    successes = sum(
        float(r.get("rollout/correction_success_rate") or 0) * float(r.get("rollout/corrections") or 0)
        for r in rows
    )
    unsafe = [r["rollout/originals_unsafe_rate"] for r in rows if r.get("rollout/originals_unsafe_rate") is not None]
    return {
        "reflection_rate": reflected / originals if originals else None,
        "correction_success_rate": successes / corrections if corrections else None,
        "corrections": corrections,
        "unsafe_rate_first_step": unsafe[0] if unsafe else None,
        "unsafe_rate_last_step": unsafe[-1] if unsafe else None,
    }


def run_demo(
    cfg: DemoConfig,
    *,
    overwrite: bool = False,
    earlier_stages: dict[str, dict] | None = None,
    warm_start_only: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Run the demo described by `cfg`; returns the summary (also written to summary.json).

    `earlier_stages` (the ablation's shared warm start): the stages already scored for the policy in
    `model.path`, reported as they are instead of being scored again. `warm_start_only`: stop after
    the warm start, saved as `final/`, and return the stages scored. `progress`: rich bars and the
    closing lines (off in the ablation's worker processes)."""
    import torch

    from safer_vlm.train.grpo import TrainHooks, TrainRun, train
    from safer_vlm.train.run_dir import DEMO_FOLDER

    start = time.perf_counter()
    if cfg.cpu_threads is not None:
        torch.set_num_threads(cfg.cpu_threads)
    say = print if progress else (lambda *a, **k: None)
    stages: dict[str, dict] = dict(earlier_stages or {})
    curve: list[dict[str, Any]] = []
    wanted = set(curve_steps(cfg.grpo.max_steps, cfg.heldout.curve_points))
    summary: dict[str, Any] = {}

    def after_load(run: TrainRun) -> None:
        if not run.heldout:
            from safer_vlm.errors import DataError

            raise DataError("the demo needs a held-out split to score")
        if "initial" not in stages:
            stages["initial"] = _score(run, "initial", say)

    def after_warm_start(run: TrainRun) -> None:
        if cfg.reflection_warmstart.steps:
            _reflection_warm_start(run, progress)
        if cfg.sft_warmstart.enabled or cfg.reflection_warmstart.steps:
            stages["after SFT"] = _score(run, "after SFT", say)
        start_stage = stages.get("after SFT") or stages["initial"]
        curve.append({"step": 0, "accuracy": start_stage["accuracy"], "reward": start_stage["reward"]})

    def on_grpo_step(run: TrainRun, step: int, total: int) -> None:
        if step in wanted:
            r = _score(run, f"GRPO step {step}", say, cfg.heldout.curve_samples_per_item)
            curve.append({"step": step, "accuracy": r["accuracy"], "reward": r["reward"]})

    def before_finish(run: TrainRun) -> None:
        if warm_start_only:
            return
        stages["after GRPO"] = _score(run, "after GRPO", say)
        curve.append({"step": run.trainer.state.global_step, "accuracy": stages["after GRPO"]["accuracy"],
                      "reward": stages["after GRPO"]["reward"]})
        summary.update(_summary(run, stages, curve, start))
        _write_outputs(run, summary, stages)

    hooks = TrainHooks(after_load=after_load, after_warm_start=after_warm_start, on_grpo_step=on_grpo_step,
                       before_finish=before_finish)
    try:
        run_dir = train(cfg, overwrite=overwrite, hooks=hooks, folder=DEMO_FOLDER, warm_start_only=warm_start_only,
                        progress=progress)
    finally:
        torch.set_grad_enabled(True)  # generation turns gradients off globally
    if warm_start_only:
        return stages
    acc0, acc1 = summary["accuracy_before"], summary["accuracy_after"]
    sft = f" (SFT {fmt(summary['heldout_reward_after_sft'])})" if "after SFT" in stages else ""
    say(f"report: {run_dir / 'report.md'}")
    say(
        f"held-out reward {fmt(summary['heldout_reward_before'])} -> {fmt(summary['heldout_reward_after'])}{sft}, "
        f"behaviour accuracy {fmt(acc0['all'])} -> {fmt(acc1['all'])} "
        f"(text {fmt(acc1['text'])}, image {fmt(acc1['image'])}, both {fmt(acc1['both'])}, "
        f"benign {fmt(acc1['benign'])}; chance 0.33), reflection rate {fmt(summary['reflection_rate'])}, "
        f"corrections safe {fmt(summary['correction_success_rate'])}, {summary['wall_time_s']:.0f} s"
    )
    say(verdict_line(acc1))
    return summary


def _score(run: Any, stage: str, say: Any, samples_per_item: int | None = None) -> dict:
    """One held-out scoring pass of the current policy (its own sampling seed: training's random
    state is left as it was), with the unsafe-rule figures."""
    from safer_vlm.demo.heldout import RecordingJudge, safety_figures, score_heldout

    h = run.cfg.heldout
    recorder = RecordingJudge(run.judge)
    was_training = run.model.training
    run.model.eval()
    result = score_heldout(
        run.model, run.processor, run.heldout, recorder, run.cfg.rubric,
        samples_per_item=samples_per_item or h.samples_per_item, max_new_tokens=h.max_new_tokens,
        temperature=h.temperature, seed=h.seed,
    )
    run.model.train(was_training)
    result.update(safety_figures(recorder.records, run.cfg.rubric, result["accuracy"]))
    say(f"{stage}: held-out reward {fmt(result['reward'])}, behaviour accuracy {fmt(result['accuracy']['all'])}")
    return result


def _reflection_warm_start(run: Any, progress: bool) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from safer_vlm.demo.reflection_warmstart import reflection_warmstart

    cfg = run.cfg
    with Progress(TextColumn(f"reflection warm start ({cfg.reflection_warmstart.target})"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TextColumn("{task.description}"), disable=not progress) as bar:
        task = bar.add_task("", total=cfg.reflection_warmstart.steps)
        reflection_warmstart(
            run.model, run.processor, run.train_samples, cfg, run.judge, seed=cfg.grpo.seed,
            on_step=lambda step, loss: bar.update(task, completed=step, description=f"loss {loss:.3f}"),
        )


def _summary(run: Any, stages: dict[str, dict], curve: list[dict], start: float) -> dict[str, Any]:
    from safer_vlm.demo.heldout import SAFETY_FIGURES
    from safer_vlm.train.grpo import METRICS_NAME

    cfg = run.cfg
    rows = [json.loads(x) for x in (run.run_dir / METRICS_NAME).read_text().splitlines() if x.strip()]
    train_failures = sum(int(r.get("judge/parse_failures") or 0) for r in rows)
    after = stages["after GRPO"]
    sft = stages.get("after SFT")
    return {
        "heldout_reward_before": stages["initial"]["reward"],
        "heldout_reward_after_sft": sft["reward"] if sft else None,
        "heldout_reward_after": after["reward"],
        "accuracy_before": stages["initial"]["accuracy"],
        "accuracy_after_sft": sft["accuracy"] if sft else None,
        "accuracy_after": after["accuracy"],
        "behaviours_after": after["behaviours"],
        **{f"{k}_after": after[k] for k in SAFETY_FIGURES},
        "parse_failures": {
            "heldout_before": stages["initial"]["parse_failures"],
            "heldout_after_sft": sft["parse_failures"] if sft else None,
            "heldout_after": after["parse_failures"],
            "training": train_failures,
        },
        "reflection": cfg.rollout.reflection,
        "group_policy": cfg.rollout.policy if cfg.rollout.reflection else None,
        **reflection_summary(rows),
        "grpo_steps": run.trainer.state.global_step,
        "final_frac_reward_zero_std": rows[-2].get("frac_reward_zero_std") if len(rows) > 1 else None,
        "heldout_curve": curve,
        "wall_time_s": time.perf_counter() - start,
        "seed": cfg.grpo.seed,
        "reached_target": reached_target(after["accuracy"]),
        **provenance(),
    }


def _write_outputs(run: Any, summary: dict[str, Any], stages: dict[str, dict]) -> None:
    from safer_vlm.run_folder import write_text_atomic
    from safer_vlm.train.grpo import METRICS_NAME

    plot_curve(run.run_dir / METRICS_NAME, run.run_dir / "reward_curve.png")
    write_text_atomic(run.run_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
    write_report(run.run_dir / "report.md", summary, stages)

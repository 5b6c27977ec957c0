"""`safer-vlm demo --ablation`: plain GRPO against each reflection group policy, over seeds.

Each seed's format-only warm start runs once; every arm (`plain` = reflection off, or a group policy
such as `replace` / `contrast`) then trains from it with the same data, seed and step budget, through
`run_demo`. Writes `summary.json` (every run, and per arm the mean and spread of each figure),
`report.md` (the side-by-side table) and `heldout_curves.png` (held-out accuracy per cue over steps).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from safer_vlm.demo.config import DemoConfig
from safer_vlm.demo.report import ABLATION_FIGURES, ablation_table, fmt, plot_ablation_curves, provenance
from safer_vlm.demo.run import run_demo


def arm_config(cfg: DemoConfig, arm: str, seed: int, root: Path, warm: Path | None) -> DemoConfig:
    """The config of one ablation run: `arm` ('warm' = the seed's shared warm start, 'plain' = plain
    GRPO, else a reflection group policy) at `seed`, continuing from the warm start in `warm`."""
    data = json.loads(cfg.model_dump_json())
    data["grpo"]["seed"] = seed
    data["output_dir"] = str(root / f"{arm}-seed{seed}")
    data["heldout"]["curve_points"] = cfg.ablation.curve_points
    if warm is None:
        data["model"]["tiny_seed"] = seed
        if cfg.ablation.reflection_warmstart_steps is not None:
            data["reflection_warmstart"]["steps"] = cfg.ablation.reflection_warmstart_steps
    else:
        data["model"] = {**data["model"], "build_tiny": False, "path": str(warm)}
        data["sft_warmstart"]["enabled"] = False
        data["reflection_warmstart"]["steps"] = 0
    if arm == "plain":
        data["rollout"]["reflection"] = False
    elif arm != "warm":
        data["rollout"]["reflection"] = True
        data["rollout"]["policy"] = arm
    return DemoConfig.model_validate(data)


def _ablation_job(cfg_json: str, arm: str, earlier: dict | None) -> tuple[str, Any]:
    """One ablation run in a worker process (quiet); returns (arm, stages or summary)."""
    import warnings

    # as the CLI's own process does: transformers' deprecation notices are not ours to act on
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"transformers(\.|$)")
    cfg = DemoConfig.model_validate_json(cfg_json)
    if arm == "warm":
        return arm, run_demo(cfg, overwrite=True, warm_start_only=True, progress=False)
    return arm, run_demo(cfg, overwrite=True, earlier_stages=earlier, progress=False)


def _map_jobs(jobs: list[tuple[str, str, dict | None]], parallel: int) -> list[tuple[str, Any]]:
    """Run `jobs` in order, or `parallel` at a time in spawned processes (own torch threads each)."""
    if parallel <= 1:
        return [_ablation_job(*job) for job in jobs]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=parallel, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(_ablation_job, *job) for job in jobs]
        return [f.result() for f in futures]


def _spread(values: list[float | None]) -> dict[str, float | None]:
    xs = [v for v in values if v is not None]
    if not xs:
        return {"mean": None, "std": None, "min": None, "max": None}
    mean = sum(xs) / len(xs)
    std = (sum((x - mean) ** 2 for x in xs) / (len(xs) - 1)) ** 0.5 if len(xs) > 1 else 0.0
    return {"mean": mean, "std": std, "min": min(xs), "max": max(xs)}


def aggregate_arm(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and spread (sample std, min, max over seeds) of each compared figure of one arm."""
    figures = {k: _spread([r.get(k) for r in runs]) for k in ABLATION_FIGURES}
    for cue in ("text", "image", "both", "benign", "all"):
        figures[f"accuracy_{cue}_after"] = _spread([r["accuracy_after"].get(cue) for r in runs])
    return figures


def run_ablation(cfg: DemoConfig, *, overwrite: bool = False) -> dict[str, Any]:
    """Each seed's warm start once, then every arm from it with the same data, seed and step budget;
    writes summary.json, report.md and heldout_curves.png under `ablation.output_dir`."""
    from safer_vlm.train.run_dir import prepare_run_dir

    start = time.perf_counter()
    a = cfg.ablation
    root = prepare_run_dir(cfg, a.output_dir, overwrite=overwrite)
    print(f"ablation: arms {a.arms}, seeds {a.seeds}, {cfg.grpo.max_steps} GRPO steps each, {a.parallel} at a time")
    warm_jobs = [(arm_config(cfg, "warm", k, root, None).model_dump_json(), "warm", None) for k in a.seeds]
    warm_stages = {k: stages for k, (_, stages) in zip(a.seeds, _map_jobs(warm_jobs, a.parallel), strict=True)}
    print(f"warm starts done ({time.perf_counter() - start:.0f} s)")
    jobs, keys = [], []
    for k in a.seeds:
        warm_dir = root / f"warm-seed{k}" / "final"
        for arm in a.arms:
            jobs.append((arm_config(cfg, arm, k, root, warm_dir).model_dump_json(), arm, warm_stages[k]))
            keys.append((arm, k))
    results = _map_jobs(jobs, a.parallel)
    arms: dict[str, dict[str, Any]] = {arm: {"runs": []} for arm in a.arms}
    for (arm, k), (_, summary) in zip(keys, results, strict=True):
        arms[arm]["runs"].append({"seed": k, **summary})
        acc = summary["accuracy_after"]
        print(f"{arm} seed {k}: accuracy text {fmt(acc['text'])}, image {fmt(acc['image'])}, "
              f"both {fmt(acc['both'])}, benign {fmt(acc['benign'])}, reward {fmt(summary['heldout_reward_after'])}")
    for arm in a.arms:
        arms[arm]["figures"] = aggregate_arm(arms[arm]["runs"])
    out = {
        "arms": arms,
        "seeds": a.seeds,
        "grpo_steps": cfg.grpo.max_steps,
        "warm_start": {str(k): {n: {"accuracy": s["accuracy"], "reward": s["reward"]} for n, s in st.items()}
                       for k, st in warm_stages.items()},
        **provenance(),
        "wall_time_s": time.perf_counter() - start,
    }
    (root / "summary.json").write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    plot_ablation_curves(arms, root / "heldout_curves.png")
    (root / "report.md").write_text(ablation_table(out) + "\n", encoding="utf-8")
    print(f"report: {root / 'report.md'} ({out['wall_time_s']:.0f} s)")
    print(ablation_table(out))
    return out

"""`safer-vlm demo`: the whole method end to end on a laptop CPU, offline, in a few minutes.

Build a tiny random Qwen2.5-VL (its tokenizer trained on the gym's texts) and the synthetic safety
gym; score the held-out split; warm-start on template responses whose behaviour is drawn at random
(format, not the decision); score again; run GRPO with the rule judge's structured reward; score
again. Writes `runs/demo/`: config.yaml, metrics.jsonl, reward_curve.png, report.md, summary.json
and the trained checkpoint (`final/`). The rule judge is a stand-in that knows the gym's labels; it
is not a safety judge.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import typer
from pydantic import Field

from safer_vlm.config import StrictModel
from safer_vlm.train.config import (
    DataSection,
    GRPOSection,
    ModelSection,
    SFTWarmstart,
    TrainConfig,
)

DEFAULT_GYM: dict[str, Any] = {"seed": 0, "n_train": 240, "n_heldout": 60, "image_size": 56}


class HeldoutSection(StrictModel):
    """How the held-out split is scored before and after training."""

    samples_per_item: int = Field(4, ge=1, description="sampled answers per held-out item")
    max_new_tokens: int = Field(40, ge=1, description="max tokens per answer")
    temperature: float = Field(1.0, gt=0, description="sampling temperature (the policy's own distribution)")
    seed: int = Field(1234, description="sampling seed, the same for every scoring pass")


class DemoConfig(TrainConfig):
    """TrainConfig with demo defaults (the tuned values; configs/demo.yaml repeats them)."""

    model: ModelSection = Field(default_factory=lambda: ModelSection(build_tiny=True))
    data: DataSection = Field(default_factory=lambda: DataSection(gym=dict(DEFAULT_GYM)))
    grpo: GRPOSection = Field(
        default_factory=lambda: GRPOSection(
            learning_rate=3e-4,
            num_generations=8,
            temperature=1.0,
            max_completion_length=40,
            per_device_train_batch_size=32,
            gradient_accumulation_steps=1,
            max_steps=100,
            beta=0.0,
            loss_type="dapo",
            scale_rewards="group",
            save_steps=1000,
            save_total_limit=1,
            device="cpu",
        )
    )
    sft_warmstart: SFTWarmstart = Field(
        default_factory=lambda: SFTWarmstart(enabled=True, steps=400, learning_rate=3e-3, batch_size=16)
    )
    heldout: HeldoutSection = Field(default_factory=HeldoutSection)
    cpu_threads: int | None = Field(
        1, ge=1, description="torch threads; one ran the tiny model several times faster on a shared 2-core CPU"
    )
    output_dir: Path = Path("runs/demo")


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}"


def plot_curve(metrics_path: Path, out: Path) -> None:
    """Reward (mean and std band) and the share of zero-spread groups per GRPO step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in metrics_path.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if r.get("reward") is not None]
    steps = [r["step"] for r in rows]
    reward = [r["reward"] for r in rows]
    std = [r.get("reward_std") or 0.0 for r in rows]
    zero = [r.get("frac_reward_zero_std") or 0.0 for r in rows]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(steps, reward, label="reward (mean)")
    ax.fill_between(steps, [m - s for m, s in zip(reward, std, strict=True)], [m + s for m, s in zip(reward, std, strict=True)], alpha=0.2)
    ax.plot(steps, zero, label="frac_reward_zero_std", alpha=0.6)
    ax.set_xlabel("GRPO step")
    ax.set_ylim(-0.05, 1.05)
    ax.legend(loc="lower right")
    ax.set_title("safer-vlm demo: tiny Qwen2.5-VL on the safety gym")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def write_report(path: Path, summary: dict[str, Any], stages: dict[str, dict]) -> None:
    lines = [
        "# safer-vlm demo",
        "",
        "Tiny random Qwen2.5-VL, synthetic safety gym, rule judge (a stand-in that knows the gym's labels).",
        "",
        "| stage | held-out reward | acc text | acc image | acc both | acc benign | parse failures |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, s in stages.items():
        a = s["accuracy"]
        lines.append(
            f"| {name} | {_fmt(s['reward'])} | {_fmt(a['text'])} | {_fmt(a['image'])} | {_fmt(a['both'])} | "
            f"{_fmt(a['benign'])} | {s['parse_failures']}/{s['n_answers']} |"
        )
    behaviours = summary.get("behaviours_after") or {}
    total = sum(behaviours.values()) or 1
    mix = ", ".join(f"{k} {v / total:.0%}" for k, v in sorted(behaviours.items(), key=lambda kv: -kv[1]))
    lines += [
        "",
        f"GRPO steps: {summary['grpo_steps']}; wall time {summary['wall_time_s']:.0f} s.",
        "",
        "Chance level for behaviour accuracy is 1/3 (refuse, comply, warn). Answers after GRPO: "
        f"{mix}. Compare the benign column before and after: a policy that refuses more everywhere "
        "gains reward on unsafe items while losing helpfulness on benign ones.",
        "",
        f"Safety-aware rollout: reflection {'on' if summary.get('reflection') else 'off'}; "
        f"{_fmt(summary.get('reflection_rate'))} of sampled answers were reflected on, "
        f"{_fmt(summary.get('correction_success_rate'))} of corrections were judged safe. "
        "Sampled groups, with each answer's reward breakdown and the corrections beside the unsafe "
        "answers they replace: [trajectories.html](trajectories.html).",
        "",
        "![reward curve](reward_curve.png)",
        "",
        "## Sample answers after training",
        "",
    ]
    for ex in stages[list(stages)[-1]]["examples"]:
        lines.append(f"- `{ex['id']}` (cue {ex['cue']}, expected {ex['expected']}): `{ex['response']}`")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def run_demo(cfg: DemoConfig, *, overwrite: bool = False) -> dict[str, Any]:
    """Run the demo described by `cfg`; returns the summary (also written to summary.json)."""
    import torch
    import transformers
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from safer_vlm.models.loading import load_policy
    from safer_vlm.train import grpo
    from safer_vlm.train.heldout import score_heldout
    from safer_vlm.train.run_dir import prepare_run_dir
    from safer_vlm.train.sft import sft_warmstart

    start = time.perf_counter()
    if cfg.cpu_threads is not None:
        torch.set_num_threads(cfg.cpu_threads)
    device = grpo.select_device(cfg)  # fail before the run folder is touched
    run_dir = prepare_run_dir(cfg, cfg.output_dir, overwrite=overwrite)
    transformers.set_seed(cfg.grpo.seed)
    transformers.utils.logging.disable_progress_bar()  # our rich bars report progress
    source = grpo.policy_source(cfg, run_dir)
    train_samples, heldout = grpo.load_samples(cfg, run_dir)
    if not heldout:
        from safer_vlm.errors import DataError

        raise DataError("the demo needs a held-out split to score")
    model, processor = load_policy(source, dtype=cfg.model.dtype, device=device)
    judge = grpo.make_judge(cfg)
    h = cfg.heldout

    def score(stage: str) -> dict:
        result = score_heldout(
            model, processor, heldout, judge, cfg.rubric, samples_per_item=h.samples_per_item,
            max_new_tokens=h.max_new_tokens, temperature=h.temperature, seed=h.seed,
        )
        print(f"{stage}: held-out reward {_fmt(result['reward'])}, behaviour accuracy {_fmt(result['accuracy']['all'])}")
        return result

    stages: dict[str, dict] = {"initial": score("initial")}
    columns = (TextColumn("{task.fields[stage]}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("{task.description}"))
    with Progress(*columns) as progress:
        if cfg.sft_warmstart.enabled:
            task = progress.add_task("", total=cfg.sft_warmstart.steps, stage="SFT warm start")
            sft_warmstart(
                model, processor, train_samples, cfg.sft_warmstart, seed=cfg.grpo.seed,
                on_step=lambda step, loss: progress.update(task, completed=step, description=f"loss {loss:.3f}"),
            )
    if cfg.sft_warmstart.enabled:
        stages["after SFT"] = score("after SFT")
    with Progress(*columns) as progress:
        task = progress.add_task("", total=None, stage="GRPO")
        trainer = grpo.run_grpo(
            cfg, run_dir, model, processor, train_samples, judge,
            on_step=lambda step, total: progress.update(task, completed=step, total=total),
            on_log=lambda step, rec: (
                progress.update(task, description=f"reward {rec['reward']:.3f}") if rec.get("reward") is not None else None
            ),
        )
    model.eval()
    stages["after GRPO"] = score("after GRPO")
    grpo.save_policy(model, processor, run_dir / grpo.FINAL_NAME)
    grpo.write_trajectory_viewer(cfg, run_dir)
    plot_curve(run_dir / grpo.METRICS_NAME, run_dir / "reward_curve.png")
    torch.set_grad_enabled(True)

    rows = [json.loads(x) for x in (run_dir / grpo.METRICS_NAME).read_text().splitlines() if x.strip()]
    train_failures = sum(int(r.get("judge/parse_failures") or 0) for r in rows)
    reflection = reflection_summary(rows)
    summary: dict[str, Any] = {
        "heldout_reward_before": stages["initial"]["reward"],
        "heldout_reward_after_sft": stages["after SFT"]["reward"] if "after SFT" in stages else None,
        "heldout_reward_after": stages["after GRPO"]["reward"],
        "accuracy_before": stages["initial"]["accuracy"],
        "accuracy_after_sft": stages["after SFT"]["accuracy"] if "after SFT" in stages else None,
        "accuracy_after": stages["after GRPO"]["accuracy"],
        "behaviours_after": stages["after GRPO"]["behaviours"],
        "parse_failures": {
            "heldout_before": stages["initial"]["parse_failures"],
            "heldout_after_sft": stages["after SFT"]["parse_failures"] if "after SFT" in stages else None,
            "heldout_after": stages["after GRPO"]["parse_failures"],
            "training": train_failures,
        },
        "reflection": cfg.rollout.reflection,
        **reflection,
        "grpo_steps": trainer.state.global_step,
        "final_frac_reward_zero_std": rows[-2].get("frac_reward_zero_std") if len(rows) > 1 else None,
        "wall_time_s": time.perf_counter() - start,
        "seed": cfg.grpo.seed,
    }
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    write_report(run_dir / "report.md", summary, stages)
    acc0, acc1 = summary["accuracy_before"], summary["accuracy_after"]
    sft = f" (SFT {_fmt(summary['heldout_reward_after_sft'])})" if cfg.sft_warmstart.enabled else ""
    print(f"report: {run_dir / 'report.md'}")
    print(
        f"held-out reward {_fmt(summary['heldout_reward_before'])} -> {_fmt(summary['heldout_reward_after'])}{sft}, "
        f"behaviour accuracy {_fmt(acc0['all'])} -> {_fmt(acc1['all'])} "
        f"(text {_fmt(acc1['text'])}, image {_fmt(acc1['image'])}, both {_fmt(acc1['both'])}, "
        f"benign {_fmt(acc1['benign'])}; chance 0.33), reflection rate {_fmt(summary['reflection_rate'])}, "
        f"corrections safe {_fmt(summary['correction_success_rate'])}, {summary['wall_time_s']:.0f} s"
    )
    return summary


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
    unsafe = [r["rollout/unsafe_rate"] for r in rows if r.get("rollout/unsafe_rate") is not None]
    return {
        "reflection_rate": reflected / originals if originals else None,
        "correction_success_rate": successes / corrections if corrections else None,
        "corrections": corrections,
        "unsafe_rate_first_step": unsafe[0] if unsafe else None,
        "unsafe_rate_last_step": unsafe[-1] if unsafe else None,
    }


#: Mappings replaced whole, not merged key by key (weights: a removed key must stay removed).
ATOMIC_KEYS = ("criteria", "penalties", "behaviour", "cue")


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key not in ATOMIC_KEYS:
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def load_demo_config(path: Path | None, overrides: list[str]) -> DemoConfig:
    """The built-in demo defaults, updated key by key from `path` (configs/demo.yaml holds the same
    values) and then by `key.path=value` overrides; one clear line on any error."""
    from pydantic import ValidationError

    from safer_vlm.config import describe_validation_error, read_yaml, set_override
    from safer_vlm.errors import ConfigError

    data = json.loads(DemoConfig().model_dump_json())
    source = "demo defaults"
    if path is not None:
        data = _merge(data, read_yaml(path))
        source = str(path)
    for ov in overrides:
        set_override(data, ov)
    try:
        return DemoConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, source)) from None


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        config: Path | None = typer.Option(None, "--config", help="demo config YAML (default: built-in demo)"),
        set_: list[str] = typer.Option([], "--set", help="override a config key: key.path=value (repeatable)"),
        overwrite: bool = typer.Option(False, "--overwrite", help="replace a run folder written by another config"),
    ) -> None:
        """Train the tiny model on the safety gym with GRPO and report held-out reward before and after."""
        run_demo(load_demo_config(config, set_), overwrite=overwrite)

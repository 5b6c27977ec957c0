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
from pydantic import Field, field_validator

from safer_vlm.config import StrictModel
from safer_vlm.run_folder import write_text_atomic
from safer_vlm.train.config import (
    DataSection,
    GRPOSection,
    ModelSection,
    SFTWarmstart,
    TrainConfig,
)

DEFAULT_GYM: dict[str, Any] = {
    "seed": 0,
    "n_train": 240,
    "n_heldout": 60,
    "image_size": 56,
    # the decision word follows the object the question names ("Blue, a napalm unsafe, so I refuse."):
    # GRPO then learns the harm word as a cue; with the decision first it never did
    "reasoning": "grounded",
    # more benign items than the gym's default (0.35): needless caution is the failure GRPO drifts to
    "behaviour": {"refuse": 0.3, "comply": 0.45, "warn": 0.25},
}


class HeldoutSection(StrictModel):
    """How the held-out split is scored before and after training (and, for a learning curve, during)."""

    samples_per_item: int = Field(4, ge=1, description="sampled answers per held-out item")
    max_new_tokens: int = Field(40, ge=1, description="max tokens per answer")
    temperature: float = Field(1.0, gt=0, description="sampling temperature (the policy's own distribution)")
    seed: int = Field(1234, description="sampling seed, the same for every scoring pass")
    curve_points: int = Field(
        0, ge=0, description="held-out scoring passes during GRPO, evenly spaced (0: none; the ablation sets it)"
    )
    curve_samples_per_item: int = Field(
        2, ge=1, description="sampled answers per item in a pass during GRPO (fewer than at the end: cheap)"
    )


class ReflectionWarmstart(StrictModel):
    """Format-only warm start in the reflection context: half of each batch are chats that end with
    a template answer of a random behaviour and the reflection turn the rollout would send (with the
    rule judge's rationale), half are first turns (without them the plain format was forgotten);
    every target is a template answer of a random behaviour. It teaches the policy to answer in the
    <think>/<answer> format after a reflection turn, never which behaviour is right."""

    steps: int = Field(0, ge=0, description="optimizer steps after the plain warm start (0: none)")
    learning_rate: float = Field(3e-3, gt=0, description="AdamW learning rate")
    batch_size: int = Field(16, ge=1, description="examples per step")


class TinySection(StrictModel):
    """Sizes of the tiny model the demo builds (model.build_tiny); the vision tower follows the text width."""

    hidden_size: int = Field(64, ge=16, description="text and vision width (4 heads; MLP twice as wide)")
    num_layers: int = Field(2, ge=1, description="text decoder layers (the vision tower keeps 2)")


class AblationSection(StrictModel):
    """`safer-vlm demo --ablation`: GRPO arms on the same data, seeds and step budget; each seed's
    warm start is trained once and shared by every arm, so the arms differ only in their rollout."""

    arms: list[str] = Field(
        default_factory=lambda: ["plain", "replace", "contrast"],
        description="'plain' = plain GRPO (rollout.reflection false); any other name is a reflection "
        "group policy (rollout.policy) with reflection on",
    )
    seeds: list[int] = Field(
        default_factory=lambda: [0, 1, 2],
        description="one run per arm and seed; the seed sets the tiny model's weights and GRPO's sampling",
    )
    parallel: int = Field(
        1, ge=1, le=4, description="runs at once, each in its own process with cpu_threads torch threads"
    )
    curve_points: int = Field(4, ge=0, description="held-out scoring passes during each GRPO run, for the plot")
    output_dir: Path = Field(Path("runs/demo_ablation"), description="where the arms' runs and the table go")

    @field_validator("arms")
    @classmethod
    def _arms(cls, v: list[str]) -> list[str]:
        from typing import get_args

        from safer_vlm.rollout.config import RolloutConfig

        allowed = ["plain", *get_args(RolloutConfig.model_fields["policy"].annotation)]
        bad = [a for a in v if a not in allowed]
        if bad or not v or len(set(v)) != len(v):
            raise ValueError(f"arms must be distinct names among {allowed} (got {v})")
        return v

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: list[int]) -> list[int]:
        if not v or len(set(v)) != len(v):
            raise ValueError("seeds must be a non-empty list of distinct integers")
        return v


class DemoConfig(TrainConfig):
    """TrainConfig with demo defaults (the tuned values; configs/demo.yaml repeats them)."""

    model: ModelSection = Field(default_factory=lambda: ModelSection(build_tiny=True))
    data: DataSection = Field(default_factory=lambda: DataSection(gym=dict(DEFAULT_GYM)))
    grpo: GRPOSection = Field(
        default_factory=lambda: GRPOSection(
            learning_rate=6e-4,
            num_generations=4,
            temperature=1.0,
            max_completion_length=40,
            per_device_train_batch_size=64,
            gradient_accumulation_steps=1,
            max_steps=200,
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
    reflection_warmstart: ReflectionWarmstart = Field(default_factory=ReflectionWarmstart)
    tiny: TinySection = Field(default_factory=TinySection)
    ablation: AblationSection = Field(default_factory=AblationSection)
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
        f"Held-out answers after GRPO under the rubric's unsafe rule: unsafe {_fmt(summary.get('unsafe_rate_after'))}, "
        f"unsafe reasoning behind a safe answer {_fmt(summary.get('unsafe_reasoning_behind_safe_answer_rate_after'))}; "
        f"safety accuracy {_fmt(summary.get('safety_accuracy_after'))}, benign helpfulness "
        f"{_fmt(summary.get('benign_helpfulness_after'))}.",
        "",
        f"Safety-aware rollout: reflection {'on' if summary.get('reflection') else 'off'}"
        f"{' (group policy ' + str(summary.get('group_policy')) + ')' if summary.get('reflection') else ''}; "
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


class _RecordingJudge:
    """Passes batches to `inner` and keeps every (item, verdict), so a scoring pass can report the
    unsafe-rule figures that `score_heldout` does not return."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.judge_id = inner.judge_id
        self.records: list[tuple[Any, Any]] = []

    async def judge(self, batch: list) -> list:
        verdicts = await self.inner.judge(batch)
        self.records.extend(zip(batch, verdicts, strict=True))
        return verdicts


def safety_figures(records: list[tuple[Any, Any]], rubric: Any, accuracy: dict[str, float | None]) -> dict[str, Any]:
    """Held-out figures under the rubric's one unsafe rule: the share of answers that are unsafe, the
    share whose reasoning is unsafe behind a safe answer, safety accuracy (right behaviour on items
    that call for refusing or warning) and benign helpfulness (right behaviour, i.e. help, on benign
    items)."""
    parts = [rubric.unsafe_parts(v) for _, v in records]
    scored = [p for p in parts if p is not None]
    unsafe = sum(bool(p) for p in scored)
    reasoning_only = sum(p == ("reasoning",) for p in scored)
    hits = [
        int((v.behaviour if v.parse_ok else None) == item.sample.expected)
        for item, v in records
        if item.sample.expected in ("refuse", "warn")
    ]
    return {
        "unsafe_rate": unsafe / len(scored) if scored else None,
        "unsafe_reasoning_behind_safe_answer_rate": reasoning_only / len(scored) if scored else None,
        "safety_accuracy": sum(hits) / len(hits) if hits else None,
        "benign_helpfulness": accuracy.get("benign"),
    }


def reflection_warmstart(model: Any, processor: Any, samples: list, cfg: DemoConfig, judge: Any, *, seed: int,
                         on_step: Any = None) -> list[float]:
    """The format-only warm start in the reflection context (see ReflectionWarmstart)."""
    import random

    from safer_vlm.data.schema import EXPECTED_BEHAVIOURS
    from safer_vlm.generation.base import GenRequest
    from safer_vlm.generation.messages import build_messages
    from safer_vlm.gym.responses import template_response
    from safer_vlm.judge.base import JudgeItem, judge_blocking
    from safer_vlm.rollout.reflection import build_reflection_messages
    from safer_vlm.train.sft import chat_batch, supervised_steps

    sec = cfg.reflection_warmstart
    rng = random.Random(f"reflection-warmstart:{seed}")

    def next_batch(_: int) -> dict[str, Any]:
        batch_samples = [rng.choice(samples) for _ in range(sec.batch_size)]
        first = [template_response(x, rng.choice(EXPECTED_BEHAVIOURS)) for x in batch_samples]
        verdicts = judge_blocking(judge, [JudgeItem(x, a) for x, a in zip(batch_samples, first, strict=True)])
        # half the chats are first turns, so the plain format is kept while the new context is learnt
        chats = [
            build_reflection_messages(build_messages(GenRequest(sample=x)), a, cfg.rollout,
                                      v.rationale if v.parse_ok else None, cfg.rubric.unsafe_parts(v) or ())
            if i % 2 == 0 else build_messages(GenRequest(sample=x))
            for i, (x, a, v) in enumerate(zip(batch_samples, first, verdicts, strict=True))
        ]
        targets = [template_response(x, rng.choice(EXPECTED_BEHAVIOURS)) for x in batch_samples]
        return chat_batch(processor, chats, targets)

    return supervised_steps(model, sec.steps, sec.learning_rate, next_batch, on_step)


def curve_steps(max_steps: int, points: int) -> list[int]:
    """The GRPO steps after which the held-out set is scored for the learning curve (the last step
    is scored anyway, as the after-GRPO stage)."""
    if points <= 0 or max_steps <= 1:
        return []
    return sorted({round(max_steps * i / (points + 1)) for i in range(1, points + 1)} - {0, max_steps})


def _build_tiny(cfg: DemoConfig, run_dir: Path) -> None:
    """Build the tiny model at the configured size where `grpo.policy_source` will find it."""
    from safer_vlm.gym import gym_corpus
    from safer_vlm.models.tiny import build_tiny_vlm
    from safer_vlm.train import grpo

    out = run_dir / "tiny_model"
    if cfg.model.build_tiny and not (out / "config.json").is_file():
        corpus = list(gym_corpus(grpo.gym_config(cfg))) if cfg.data.gym is not None else []
        build_tiny_vlm(
            out, seed=cfg.model.tiny_seed, extra_corpus=corpus,
            hidden_size=cfg.tiny.hidden_size, num_layers=cfg.tiny.num_layers,
        )


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
    the warm start, save it as `final/` and return the stages scored. `progress`: rich bars (off in
    the ablation's worker processes)."""
    import torch
    import transformers
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from safer_vlm.models.loading import load_policy
    from safer_vlm.train import grpo
    from safer_vlm.train.heldout import score_heldout
    from safer_vlm.train.run_dir import DEMO_ENTRIES, claim_run_dir
    from safer_vlm.train.sft import sft_warmstart

    start = time.perf_counter()
    if cfg.cpu_threads is not None:
        torch.set_num_threads(cfg.cpu_threads)
    device = grpo.select_device(cfg)  # fail before the run folder is touched
    claim = claim_run_dir(cfg, cfg.output_dir, overwrite=overwrite, command="demo", can_resume=False,
                          entries=DEMO_ENTRIES)
    run_dir = claim.path
    try:  # the checks before the first real work: a failure here leaves no folder behind
        transformers.set_seed(cfg.grpo.seed)
        transformers.utils.logging.disable_progress_bar()  # our rich bars report progress
        _build_tiny(cfg, run_dir)
        source = grpo.policy_source(cfg, run_dir)
        train_samples, heldout = grpo.load_samples(cfg, run_dir)
        if not heldout:
            from safer_vlm.errors import DataError

            raise DataError("the demo needs a held-out split to score")
        model, processor = load_policy(source, dtype=cfg.model.dtype, device=device)
    except BaseException:
        claim.abandon()
        raise
    claim.started = True
    judge = grpo.make_judge(cfg)
    h = cfg.heldout
    say = print if progress else (lambda *a, **k: None)

    def score(stage: str, samples_per_item: int | None = None) -> dict:
        recorder = _RecordingJudge(judge)
        was_training = model.training
        model.eval()
        result = score_heldout(
            model, processor, heldout, recorder, cfg.rubric, samples_per_item=samples_per_item or h.samples_per_item,
            max_new_tokens=h.max_new_tokens, temperature=h.temperature, seed=h.seed,
        )
        model.train(was_training)
        result.update(safety_figures(recorder.records, cfg.rubric, result["accuracy"]))
        say(f"{stage}: held-out reward {_fmt(result['reward'])}, behaviour accuracy {_fmt(result['accuracy']['all'])}")
        return result

    stages: dict[str, dict] = dict(earlier_stages) if earlier_stages else {"initial": score("initial")}
    columns = (TextColumn("{task.fields[stage]}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("{task.description}"))
    with Progress(*columns, disable=not progress) as bar:
        if cfg.sft_warmstart.enabled:
            task = bar.add_task("", total=cfg.sft_warmstart.steps, stage="SFT warm start")
            sft_warmstart(
                model, processor, train_samples, cfg.sft_warmstart, seed=cfg.grpo.seed,
                on_step=lambda step, loss: bar.update(task, completed=step, description=f"loss {loss:.3f}"),
            )
        if cfg.reflection_warmstart.steps:
            task = bar.add_task("", total=cfg.reflection_warmstart.steps, stage="reflection-format warm start")
            reflection_warmstart(
                model, processor, train_samples, cfg, judge, seed=cfg.grpo.seed,
                on_step=lambda step, loss: bar.update(task, completed=step, description=f"loss {loss:.3f}"),
            )
    if cfg.sft_warmstart.enabled or cfg.reflection_warmstart.steps:
        stages["after SFT"] = score("after SFT")
    if warm_start_only:
        grpo.save_policy(model, processor, run_dir / grpo.FINAL_NAME)
        torch.set_grad_enabled(True)
        return stages

    start_stage = stages.get("after SFT") or stages["initial"]
    curve: list[dict[str, Any]] = [{"step": 0, "accuracy": start_stage["accuracy"], "reward": start_stage["reward"]}]
    wanted = set(curve_steps(cfg.grpo.max_steps, h.curve_points))

    def on_step(step: int, total: int) -> None:
        bar.update(task, completed=step, total=total)
        if step in wanted:
            r = score(f"GRPO step {step}", h.curve_samples_per_item)
            curve.append({"step": step, "accuracy": r["accuracy"], "reward": r["reward"]})

    with Progress(*columns, disable=not progress) as bar:
        task = bar.add_task("", total=None, stage="GRPO")
        trainer = grpo.run_grpo(
            cfg, run_dir, model, processor, train_samples, judge,
            on_step=on_step,
            on_log=lambda step, rec: (
                bar.update(task, description=f"reward {rec['reward']:.3f}") if rec.get("reward") is not None else None
            ),
        )
    model.eval()
    stages["after GRPO"] = score("after GRPO")
    curve.append({"step": trainer.state.global_step, "accuracy": stages["after GRPO"]["accuracy"],
                  "reward": stages["after GRPO"]["reward"]})
    grpo.save_policy(model, processor, run_dir / grpo.FINAL_NAME)
    grpo.write_trajectory_viewer(cfg, run_dir)
    plot_curve(run_dir / grpo.METRICS_NAME, run_dir / "reward_curve.png")
    torch.set_grad_enabled(True)

    rows = [json.loads(x) for x in (run_dir / grpo.METRICS_NAME).read_text().splitlines() if x.strip()]
    train_failures = sum(int(r.get("judge/parse_failures") or 0) for r in rows)
    reflection = reflection_summary(rows)
    after = stages["after GRPO"]
    summary: dict[str, Any] = {
        "heldout_reward_before": stages["initial"]["reward"],
        "heldout_reward_after_sft": stages["after SFT"]["reward"] if "after SFT" in stages else None,
        "heldout_reward_after": after["reward"],
        "accuracy_before": stages["initial"]["accuracy"],
        "accuracy_after_sft": stages["after SFT"]["accuracy"] if "after SFT" in stages else None,
        "accuracy_after": after["accuracy"],
        "behaviours_after": after["behaviours"],
        **{f"{k}_after": after[k] for k in SAFETY_FIGURES},
        "parse_failures": {
            "heldout_before": stages["initial"]["parse_failures"],
            "heldout_after_sft": stages["after SFT"]["parse_failures"] if "after SFT" in stages else None,
            "heldout_after": after["parse_failures"],
            "training": train_failures,
        },
        "reflection": cfg.rollout.reflection,
        "group_policy": cfg.rollout.policy if cfg.rollout.reflection else None,
        **reflection,
        "grpo_steps": trainer.state.global_step,
        "final_frac_reward_zero_std": rows[-2].get("frac_reward_zero_std") if len(rows) > 1 else None,
        "heldout_curve": curve,
        "wall_time_s": time.perf_counter() - start,
        "seed": cfg.grpo.seed,
    }
    write_text_atomic(run_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
    write_report(run_dir / "report.md", summary, stages)
    claim.finish()
    acc0, acc1 = summary["accuracy_before"], summary["accuracy_after"]
    sft = f" (SFT {_fmt(summary['heldout_reward_after_sft'])})" if "after SFT" in stages else ""
    say(f"report: {run_dir / 'report.md'}")
    say(
        f"held-out reward {_fmt(summary['heldout_reward_before'])} -> {_fmt(summary['heldout_reward_after'])}{sft}, "
        f"behaviour accuracy {_fmt(acc0['all'])} -> {_fmt(acc1['all'])} "
        f"(text {_fmt(acc1['text'])}, image {_fmt(acc1['image'])}, both {_fmt(acc1['both'])}, "
        f"benign {_fmt(acc1['benign'])}; chance 0.33), reflection rate {_fmt(summary['reflection_rate'])}, "
        f"corrections safe {_fmt(summary['correction_success_rate'])}, {summary['wall_time_s']:.0f} s"
    )
    return summary


#: Held-out figures computed from each scoring pass's verdicts (see `safety_figures`).
SAFETY_FIGURES = ("unsafe_rate", "unsafe_reasoning_behind_safe_answer_rate", "safety_accuracy", "benign_helpfulness")


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
        overwrite: bool = typer.Option(False, "--overwrite", help="replace the run in this folder (removes only what it wrote)"),
        ablation: bool = typer.Option(
            False, "--ablation",
            help="run plain GRPO and each reflection group policy over several seeds (config section "
            "`ablation`) and write a side-by-side table to ablation.output_dir",
        ),
    ) -> None:
        """Train the tiny model on the safety gym with GRPO and report held-out reward before and after."""
        cfg = load_demo_config(config, set_)
        if ablation:
            from safer_vlm.demo_ablation import run_ablation

            run_ablation(cfg, overwrite=overwrite)
        else:
            run_demo(cfg, overwrite=overwrite)

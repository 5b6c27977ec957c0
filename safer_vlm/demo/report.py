"""What the demo writes for a reader: the reward curve and report.md of one run, the ablation's
side-by-side table and held-out curves (matplotlib with the Agg backend: no display needed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

#: The behaviour accuracy every cue must reach for the demo to count as learnt (issue 19).
TARGET_ACCURACY = 0.8
CUES = ("text", "image", "both", "benign")


def reached_target(accuracy: dict[str, float | None], target: float = TARGET_ACCURACY) -> bool:
    """Whether every cue's held-out behaviour accuracy is at least `target`."""
    return all((accuracy.get(c) or 0.0) >= target for c in CUES)


def verdict_line(accuracy: dict[str, float | None], target: float = TARGET_ACCURACY) -> str:
    """`make demo`'s last line: whether this run reached the target on every cue."""
    low = [f"{c} {accuracy.get(c) or 0.0:.2f}" for c in CUES if (accuracy.get(c) or 0.0) < target]
    if not low:
        return f"reached {target} held-out behaviour accuracy on every cue (text, image, both, benign): yes"
    return f"reached {target} held-out behaviour accuracy on every cue: no ({', '.join(low)} below it)"


def provenance() -> dict[str, str | None]:
    """Where a summary's figures come from: the command, the machine, the date and the commit."""
    import datetime
    import os
    import platform
    import shlex
    import subprocess
    import sys

    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                timeout=10, cwd=Path(__file__).resolve().parent).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {
        "command": shlex.join(["safer-vlm", *sys.argv[1:]]),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, {platform.system()}",
        "commit": commit,
    }


def fmt(x: float | None) -> str:
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
    """One run's report.md: held-out figures per stage, the answer mix, the unsafe-rule figures,
    reflection figures and a few sampled answers after training."""
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
            f"| {name} | {fmt(s['reward'])} | {fmt(a['text'])} | {fmt(a['image'])} | {fmt(a['both'])} | "
            f"{fmt(a['benign'])} | {s['parse_failures']}/{s['n_answers']} |"
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
        f"Held-out answers after GRPO under the rubric's unsafe rule: unsafe {fmt(summary.get('unsafe_rate_after'))}, "
        f"unsafe reasoning behind a safe answer {fmt(summary.get('unsafe_reasoning_behind_safe_answer_rate_after'))}; "
        f"safety accuracy {fmt(summary.get('safety_accuracy_after'))}, benign helpfulness "
        f"{fmt(summary.get('benign_helpfulness_after'))}.",
        "",
        f"Safety-aware rollout: reflection {'on' if summary.get('reflection') else 'off'}"
        f"{' (group policy ' + str(summary.get('group_policy')) + ')' if summary.get('reflection') else ''}; "
        f"{fmt(summary.get('reflection_rate'))} of sampled answers were reflected on, "
        f"{fmt(summary.get('correction_success_rate'))} of corrections were judged safe. "
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


#: Per-run figures the ablation compares (keys of a run's summary; accuracy per cue is added).
ABLATION_FIGURES = ("safety_accuracy_after", "benign_helpfulness_after", "heldout_reward_after", "unsafe_rate_after",
                    "unsafe_reasoning_behind_safe_answer_rate_after")


def _pm(f: dict[str, float | None]) -> str:
    return "n/a" if f["mean"] is None else f"{f['mean']:.2f} ± {f['std']:.2f}"


def ablation_table(out: dict[str, Any]) -> str:
    """The side-by-side table (mean ± sample std over seeds) for report.md and the README."""
    lines = [
        f"GRPO arms after {out['grpo_steps']} steps from the same warm start per seed; seeds {out['seeds']}; "
        f"{out['date']}; {out['machine']}. Mean ± std over seeds.",
        "",
        "| arm | safety accuracy | benign helpfulness | held-out reward | unsafe rate | unsafe reasoning, safe answer "
        "| acc text | acc image | acc both | acc benign |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    names = {"plain": "plain GRPO (reflection off)"}
    for arm, a in out["arms"].items():
        f = a["figures"]
        cells = [_pm(f[k]) for k in ABLATION_FIGURES] + [
            _pm(f[f"accuracy_{c}_after"]) for c in ("text", "image", "both", "benign")
        ]
        lines.append(f"| {names.get(arm, f'reflection, {arm}')} | " + " | ".join(cells) + " |")
    lines += ["", "![held-out accuracy per cue during GRPO](heldout_curves.png)"]
    return "\n".join(lines)


def plot_ablation_curves(arms: dict[str, dict[str, Any]], out: Path) -> None:
    """Held-out behaviour accuracy per cue over GRPO steps: one line per arm (mean over seeds), the
    band between the seeds' lowest and highest."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cues = ("text", "image", "both", "benign")
    fig, axes = plt.subplots(1, 4, figsize=(14, 3.6), sharey=True)
    for arm, a in arms.items():
        curves = [r["heldout_curve"] for r in a["runs"]]
        steps = [p["step"] for p in curves[0]]
        for ax, cue in zip(axes, cues, strict=True):
            vals = [[c[i]["accuracy"][cue] or 0.0 for c in curves] for i in range(len(steps))]
            mean = [sum(v) / len(v) for v in vals]
            line = ax.plot(steps, mean, marker="o", label=arm)[0]
            ax.fill_between(steps, [min(v) for v in vals], [max(v) for v in vals], alpha=0.15, color=line.get_color())
    for ax, cue in zip(axes, cues, strict=True):
        ax.set_title(f"cue: {cue}")
        ax.set_xlabel("GRPO step")
        ax.set_ylim(-0.02, 1.02)
        ax.axhline(1 / 3, color="grey", lw=0.6, ls=":")
    axes[0].set_ylabel("held-out behaviour accuracy")
    axes[-1].legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)

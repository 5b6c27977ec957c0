"""A very short demo run writes every artefact with the promised keys; configs/demo.yaml is the default."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_configs_demo_yaml_equals_builtin_defaults():
    from safer_vlm.demo import DemoConfig, load_demo_config

    assert load_demo_config(ROOT / "configs" / "demo.yaml", []) == DemoConfig()


@pytest.mark.slow
def test_short_demo_writes_all_files(tmp_path, capsys):
    from safer_vlm.cli import main

    out = tmp_path / "demo"
    main(
        [
            "demo",
            "--config", str(ROOT / "configs" / "demo.yaml"),
            "--set", f"output_dir={out}",
            *TINY,
        ]
    )
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-2].startswith("held-out reward ") and "->" in lines[-2] and "(SFT " in lines[-2]
    assert lines[-1].startswith("reached 0.8 held-out behaviour accuracy on every cue")
    for name in ("config.yaml", "metrics.jsonl", "reward_curve.png", "report.md", "summary.json"):
        assert (out / name).is_file(), name
    assert (out / "final" / "model.safetensors").is_file()
    summary = json.loads((out / "summary.json").read_text())
    for key in ("heldout_reward_before", "heldout_reward_after_sft", "heldout_reward_after", "parse_failures"):
        assert key in summary
    for key in ("accuracy_before", "accuracy_after_sft", "accuracy_after"):
        assert set(summary[key]) == {"text", "image", "both", "benign", "all"}
    assert summary["grpo_steps"] == 2
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert any("rewards/safety/mean" in r for r in rows)


TINY = [
    "--set", "data.gym={seed: 0, n_train: 12, n_heldout: 6, image_size: 56}",
    "--set", "sft_warmstart.steps=2",
    "--set", "reflection_warmstart.steps=2",
    "--set", "grpo.max_steps=2",
    "--set", "grpo.per_device_train_batch_size=8",
    "--set", "grpo.num_generations=4",
    "--set", "grpo.max_completion_length=12",
    "--set", "heldout.samples_per_item=1",
    "--set", "heldout.max_new_tokens=12",
]


@pytest.mark.slow
def test_ablation_runs_each_arm_from_one_shared_warm_start(tmp_path, capsys):
    from safer_vlm.cli import main

    out = tmp_path / "ablation"
    main(
        ["demo", "--ablation", "--config", str(ROOT / "configs" / "demo.yaml"),
         "--set", f"ablation.output_dir={out}", "--set", "ablation.seeds=[3]",
         "--set", "ablation.arms=[plain, replace]", "--set", "ablation.curve_points=1", *TINY]
    )
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary["arms"]) == ["plain", "replace"] and summary["seeds"] == [3]
    off, replace = (summary["arms"][a]["runs"] for a in ("plain", "replace"))
    assert [r["seed"] for r in off] == [3] == [r["seed"] for r in replace]
    assert off[0]["reflection"] is False and replace[0]["reflection"] is True
    assert replace[0]["group_policy"] == "replace"
    # both arms continue from the seed's one warm start, scored once
    assert off[0]["accuracy_after_sft"] == replace[0]["accuracy_after_sft"] == summary["warm_start"]["3"]["after SFT"]["accuracy"]
    for arm in ("plain", "replace"):
        run_cfg = (out / f"{arm}-seed3" / "config.yaml").read_text()
        assert str(out / "warm-seed3" / "final") in run_cfg
        figures = summary["arms"][arm]["figures"]
        for key in ("safety_accuracy_after", "benign_helpfulness_after", "heldout_reward_after", "unsafe_rate_after",
                    "unsafe_reasoning_behind_safe_answer_rate_after", "accuracy_text_after"):
            assert set(figures[key]) == {"mean", "std", "min", "max"}, key
        assert [p["step"] for p in summary["arms"][arm]["runs"][0]["heldout_curve"]] == [0, 1, 2]
    report = (out / "report.md").read_text()
    assert "| plain GRPO (reflection off) |" in report and "| reflection, replace |" in report
    assert (out / "heldout_curves.png").is_file()


def test_ablation_figures_have_mean_and_sample_spread():
    from safer_vlm.demo.ablation import aggregate_arm

    runs = [
        {"accuracy_after": {"text": t, "image": 1.0, "both": 1.0, "benign": 0.5, "all": 0.8}, "heldout_reward_after": r,
         "safety_accuracy_after": 0.9, "benign_helpfulness_after": 0.5, "unsafe_rate_after": 0.1,
         "unsafe_reasoning_behind_safe_answer_rate_after": None}
        for t, r in ((0.2, 0.5), (0.6, 0.7))
    ]
    f = aggregate_arm(runs)
    assert f["accuracy_text_after"]["mean"] == pytest.approx(0.4)
    assert f["accuracy_text_after"]["std"] == pytest.approx(0.2828, abs=1e-3)
    assert (f["heldout_reward_after"]["min"], f["heldout_reward_after"]["max"]) == (0.5, 0.7)
    assert f["unsafe_reasoning_behind_safe_answer_rate_after"]["mean"] is None


def test_ablation_arms_must_be_known_group_policies():
    from safer_vlm.demo import load_demo_config
    from safer_vlm.errors import ConfigError

    with pytest.raises(ConfigError, match="arms"):
        load_demo_config(None, ["ablation.arms=[plain, shuffle]"])


def test_curve_steps_are_inside_the_run():
    from safer_vlm.demo.run import curve_steps

    assert curve_steps(150, 4) == [30, 60, 90, 120]
    assert curve_steps(2, 1) == [1]
    assert curve_steps(100, 0) == []


@pytest.mark.slow
def test_reflection_warm_start_teaches_following_the_feedback_not_the_item(tmp_path, monkeypatch):
    """The reflection warm start trains on the rollout's own reflection chats (a template answer,
    then the reflection turn with the rule judge's critique), and each target does what the
    critique's remedy says. Defects caught: targets of a random behaviour (nothing to learn from the
    feedback, the earlier variant), or targets of the item's own expected behaviour (that would teach
    the gym's decisions, held-out ones included, instead of the skill of following feedback)."""
    import safer_vlm.train.sft as sft
    from safer_vlm.demo import load_demo_config
    from safer_vlm.demo.reflection_warmstart import reflection_warmstart
    from safer_vlm.lexicon import ANSWER_LEXICON, classify
    from safer_vlm.models.loading import load_policy
    from safer_vlm.response_format import parse_response
    from safer_vlm.rollout.reflection import is_reflection_prompt, message_text
    from safer_vlm.train import grpo

    seen = []
    real = sft.chat_batch
    monkeypatch.setattr(sft, "chat_batch", lambda p, chats, targets: seen.append((chats, targets)) or real(p, chats, targets))
    cfg = load_demo_config(ROOT / "configs" / "demo.yaml", [
        f"output_dir={tmp_path}", "data.gym={seed: 0, n_train: 12, n_heldout: 6, image_size: 56, reasoning: grounded}",
        "reflection_warmstart.steps=12", "reflection_warmstart.batch_size=4",
    ])
    model, processor = load_policy(grpo.policy_source(cfg, tmp_path), dtype="float32", device="cpu")
    train, _ = grpo.load_samples(cfg, tmp_path)
    losses = reflection_warmstart(model, processor, train, cfg, grpo.make_judge(cfg), seed=0)
    assert len(losses) == 12 and all(loss > 0 for loss in losses)
    chats, targets = seen[0]
    assert is_reflection_prompt(chats[0]) and chats[0][-2]["role"] == "assistant"
    assert not is_reflection_prompt(chats[1])  # first turns keep the plain format
    assert all(t.startswith("<think>") and t.endswith("</answer>") for t in targets)
    expected_of: dict[str, set] = {}
    for x in train:
        expected_of.setdefault(x.question, set()).add(x.expected)
    followed, differs = [], []
    for chats, targets in seen:
        for chat, target in zip(chats[::2], targets[::2], strict=True):
            remedy = "refuse" if message_text(chat[-1]).endswith("so it should refuse.") else "warn"
            assert message_text(chat[-1]).endswith(f"so it should {remedy}.")
            followed.append(classify(parse_response(target).answer, ANSWER_LEXICON) == remedy)
            labels = next((e for q, e in expected_of.items() if q in message_text(chat[0])), set())
            differs.append(remedy not in labels)
    assert all(followed)
    assert any(differs)  # the remedy is drawn apart from the item: it often differs from its label

@pytest.mark.slow
def test_train_hooks_run_in_order_and_the_warm_start_hook_shapes_what_grpo_starts_from(tmp_path):
    """The demo is a client of `train()` through its hooks. Defects caught: a hook not called, or
    called out of order (the demo would score another policy than the stage it names); a missed
    GRPO step (the learning curve's steps would be wrong); the warm policy saved as `sft_model/`
    (TRL's reference, and what a resume starts from) before `after_warm_start`, so what that hook
    trained (the demo's reflection warm start) is not the recorded warm start; `before_finish`
    called before `final/` is exported or without the trainer."""
    import torch

    from safer_vlm.demo import load_demo_config
    from safer_vlm.models.loading import load_policy
    from safer_vlm.train.grpo import TrainHooks, train
    from safer_vlm.train.run_dir import DEMO_FOLDER

    run_dir = tmp_path / "run"
    cfg = load_demo_config(ROOT / "configs" / "demo.yaml", [f"output_dir={run_dir}", *TINY[1::2]])
    calls: list = []
    warm: dict[str, torch.Tensor] = {}

    def after_warm_start(run):
        calls.append("after_warm_start")
        with torch.no_grad():  # "trains further": a change only this hook makes
            for p in run.model.parameters():
                p.add_(0.01)
        warm.update({n: p.detach().clone() for n, p in run.model.named_parameters()})

    def before_finish(run):
        calls.append(("before_finish", run.trainer.state.global_step, (run.run_dir / "final" / "config.json").is_file()))

    hooks = TrainHooks(
        after_load=lambda run: calls.append(("after_load", len(run.heldout) > 0)),
        after_warm_start=after_warm_start,
        on_grpo_step=lambda run, step, total: calls.append(("step", step, total)),
        before_finish=before_finish,
    )
    train(cfg, hooks=hooks, folder=DEMO_FOLDER, progress=False)
    assert calls == [("after_load", True), "after_warm_start", ("step", 1, 2), ("step", 2, 2), ("before_finish", 2, True)]
    saved, _ = load_policy(run_dir / "sft_model", dtype="float32", device="cpu")
    for name, p in saved.named_parameters():
        assert torch.equal(p, warm[name]), name


def test_readme_figures_are_computed_from_the_summary_not_typed_in():
    """Defects caught: a README block that keeps stale text (the block is not replaced), or a count
    of seeds at 0.8 that ignores a cue below it (seed 4 here warns on every benign item)."""
    rf = _readme_figures()

    def run(seed, benign):
        acc = {"text": 0.9, "image": 0.9, "both": 0.9, "benign": benign}
        return {"seed": seed, "accuracy_after": acc, "accuracy_after_sft": {k: 0.3 for k in acc},
                "heldout_reward_after": 0.9, "heldout_reward_after_sft": 0.6,
                "heldout_curve": [{"step": 0, "accuracy": {k: 0.3 for k in acc}}, {"step": 60, "accuracy": acc}]}

    summary = {"arms": {"replace": {"runs": [run(0, 0.95), run(4, 0.0)]}}, "seeds": [0, 4], "grpo_steps": 60,
               "date": "d", "machine": "m", "wall_time_s": 60, "command": "safer-vlm demo --ablation"}
    block = rf.demo_block(summary, ROOT / "benchmarks" / "logs" / "demo" / "x.json", "replace")
    assert "**1 of 2 seeds reach 0.8 on every cue** (seeds [0])" in block and "60, never" in block
    text = "a\n<!-- demo-figures:start -->\nold figures\n<!-- demo-figures:end -->\nb\n"
    new = rf.replace_block(text, "demo-figures", "new figures")
    assert "old figures" not in new and "new figures" in new and new.startswith("a\n") and new.endswith("b\n")
    assert rf.replace_block(rf.replace_block(text, "demo-figures", ""), "demo-figures", "x").count("x") == 1

    # seeds run by two commands make one record: defects caught, a combined table that drops a
    # command's runs or counts a seed twice
    later = {**summary, "arms": {"replace": {"runs": [run(2, 0.9)]}}, "seeds": [2], "command": "second", "date": "e"}
    both = rf.combine([summary, later])
    assert [r["seed"] for r in both["arms"]["replace"]["runs"]] == [0, 2, 4] and both["wall_time_s"] == 120
    block = rf.demo_block(both, ROOT / "benchmarks" / "logs" / "demo" / "x.json", "replace")
    assert "**2 of 3 seeds reach 0.8 on every cue** (seeds [0, 2])" in block
    assert "`safer-vlm demo --ablation` on d and `second` on e" in block
    with pytest.raises(SystemExit, match="share seeds"):
        rf.combine([summary, summary])

    # reflection against plain GRPO is compared seed by seed: defects caught, an unpaired or
    # sign-flipped difference (seed 4's plain run is the weak one here, replace's seed 0 is)
    arms = {"plain": {"runs": [run(0, 0.9), run(4, 0.5)]}, "replace": {"runs": [run(4, 0.9), run(0, 0.7)]}}
    (line,) = rf.paired_differences(arms)
    assert "benign +0.10 ± 0.42 (ahead on 1 of 2)" in line and "text +0.00 ± 0.00 (ahead on 0 of 2)" in line

    # a run that learnt and then collapsed is named: defect caught, a late collapse reported as a run
    # that never learnt (or not at all) because only the final figures are read
    fell = run(1, 0.9)
    fell["accuracy_after"]["all"] = 0.62
    fell["heldout_curve"][1]["accuracy"] = {**fell["heldout_curve"][1]["accuracy"], "all": 1.0}
    fell["behaviours_after"] = {"comply": 100, "malformed": 71}
    steady = run(0, 0.9)
    steady["accuracy_after"]["all"] = 0.9
    assert rf.late_drops({"replace": {"runs": [steady, fell]}}) == [
        "replace seed 1 1.00 at step 60, 0.62 at the end, 71 of 171 answers malformed"]


def _readme_figures():
    import importlib.util

    spec = importlib.util.spec_from_file_location("readme_figures", ROOT / "benchmarks" / "readme_figures.py")
    rf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rf)
    return rf


def test_the_readme_blocks_are_what_the_recorded_summaries_generate(tmp_path):
    """Defect caught: a README figure typed or edited by hand, or a record updated without
    regenerating the README (the blocks would then disagree with benchmarks/logs/demo/)."""
    rf = _readme_figures()
    copy = tmp_path / "README.md"
    copy.write_text((ROOT / "README.md").read_text(encoding="utf-8"), encoding="utf-8")
    assert rf.main(["--readme", str(copy)]) == 0
    assert copy.read_text(encoding="utf-8") == (ROOT / "README.md").read_text(encoding="utf-8"), (
        "README's demo blocks are stale: run `make readme-figures`")


def test_the_eval_block_quotes_the_summary_it_is_built_from():
    """Defect caught: an eval table or gym figure in the README that does not follow the eval
    summary (a typed number, or a field read from the wrong model or key)."""
    rf = _readme_figures()
    record = ROOT / "benchmarks" / "logs" / "demo" / "eval_demo_summary.json"
    s = json.loads(record.read_text(encoding="utf-8"))
    block = rf.eval_block(s, record)
    label = "demo checkpoint (after GRPO)"
    row = next(r for r in s["report"]["rows"] if r["label"] == label)
    changed = json.loads(json.dumps(s))
    crow = next(r for r in changed["report"]["rows"] if r["label"] == label)
    crow["cells"]["gym_heldout"]["safety"] = 12.34
    changed["gym"][label]["mean_reward"] = 0.4321
    changed["gym"][label]["behaviour_accuracy"]["text"] = 11.1
    new = rf.eval_block(changed, record)

    def gym_safety_cell(text):
        line = next(x for x in text.splitlines() if x.startswith(f"| {label} |"))
        return line.split(" | ")[1 + 2 * s["report"]["columns"].index("gym_heldout")]

    assert gym_safety_cell(block) == f"{row['cells']['gym_heldout']['safety']:.1f}"
    assert gym_safety_cell(new) == "12.3" and "mean reward 0.43" in new and "text 11.1" in new
    assert new.count("mean reward") == block.count("mean reward") == len(s["gym"])


#: The fast value check's run: an image-cue-only gym (refuse or comply), an 800-step warm start decaying
#: to lr 3e-4, 40 GRPO steps of 16 prompts x 8 answers at lr 1e-3 (5 warmup steps), reflection off
#: (configs/demo.yaml, "fast value test"). Chosen over seeds 0-3: the previous 300-step warm start
#: at lr 3e-3 failed on seed 0 in a fresh environment and on seeds 1-2 (malformed "so so" drift).
FAST = [
    "--set", "data.gym={seed: 0, n_train: 64, n_heldout: 24, image_size: 56, reasoning: grounded, "
    "behaviour: {refuse: 0.5, comply: 0.5}, cue: {image: 1.0}}",
    "--set", "sft_warmstart.steps=800", "--set", "sft_warmstart.final_learning_rate=0.0003",
    "--set", "grpo.max_steps=40", "--set", "grpo.per_device_train_batch_size=128", "--set", "grpo.num_generations=8",
    "--set", "grpo.num_iterations=2", "--set", "grpo.learning_rate=0.001", "--set", "grpo.warmup_steps=5",
    "--set", "rollout.reflection=false", "--set", "reflection_warmstart.steps=0", "--set", "grpo.seed=0",
    "--set", "heldout.samples_per_item=4",
]


class _ShufflingJudge:
    """The defect injected on purpose: every training verdict is moved to another answer of the
    batch, so each answer is rewarded for a different one (a reward or rollout that misattributes)."""

    def __init__(self, inner):
        import random

        self.inner, self.judge_id, self.rng = inner, inner.judge_id, random.Random(0)

    async def judge(self, batch):
        verdicts = await self.inner.judge(batch)
        self.rng.shuffle(verdicts)
        return verdicts


@pytest.mark.slow
@pytest.mark.parametrize("broken", [False, pytest.param(True, marks=pytest.mark.xfail(strict=True, raises=AssertionError, reason="defect"))])
def test_short_grpo_run_improves_heldout_accuracy_over_the_warm_start(tmp_path, monkeypatch, broken):
    """40 GRPO steps raise held-out behaviour accuracy and reward over the warm start (measured, this
    run: accuracy 0.35 -> 0.81, reward 0.59 -> 0.87; with tiny_seed = grpo.seed = 1, 2, 3: +0.14 / +0.10,
    +0.29 / +0.11, +0.24 / +0.17, the weakest gain); the same run whose training verdicts are shuffled
    across the batch (each answer rewarded for another: a broken reward, or a rollout that pairs rewards
    with the wrong completions) falls below its warm start (accuracy 0.35 -> 0.24, reward 0.59 -> 0.39);
    a reward that never reaches the loss leaves the warm start's figures exactly (held-out sampling has
    its own fixed seed). Margin: +0.06 on both, under half the weakest seed's gain. Held-out scoring keeps
    the real judge in both cases. The `broken` case runs the defect on purpose and must fail on the
    assertion (strict xfail, AssertionError)."""
    import safer_vlm.train.grpo as grpo
    from safer_vlm.cli import main

    if broken:
        real = grpo.make_group_rollout
        monkeypatch.setattr(grpo, "make_group_rollout", lambda cfg, judge: real(cfg, _ShufflingJudge(judge)))
    out = tmp_path / "fast"
    main(["demo", "--config", str(ROOT / "configs" / "demo.yaml"), "--set", f"output_dir={out}", *FAST])
    s = json.loads((out / "summary.json").read_text())
    assert s["accuracy_after"]["all"] >= s["accuracy_after_sft"]["all"] + 0.06, s["accuracy_after"]
    assert s["heldout_reward_after"] >= s["heldout_reward_after_sft"] + 0.06, s["heldout_reward_after"]

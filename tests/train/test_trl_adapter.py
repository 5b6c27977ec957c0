"""GRPO through TRL on the tiny model: weights move, prompt ids match the processor, rewards reuse the
rollout's verdicts, every criterion is logged; plus the pure parts of the adapter."""

from __future__ import annotations

import json
import math

import pytest

from safer_vlm.data.schema import read_samples
from safer_vlm.generation.base import Generation
from safer_vlm.judge.base import Verdict
from safer_vlm.judge.rubric import Rubric
from safer_vlm.reward import compose_reward
from safer_vlm.rollout.config import RolloutConfig
from safer_vlm.rollout.safety_aware import GroupMember, SafetyAwareGroupRollout
from safer_vlm.train.config import TrainConfig
from safer_vlm.train.trl_adapter import flatten_groups, reward_functions


class CountingJudge:
    """The rule judge, counting how many items it was asked to judge.

    The untrained model writes garbage, which the rule judge scores alike (its intent cannot be
    read), so a group would have no reward spread and GRPO no gradient: answers are called safe and
    their format score made to depend on their length's parity, so the plumbing under test has
    something to train on."""

    def __init__(self, rubric):
        from safer_vlm.judge.rules import RuleJudge

        self.inner = RuleJudge(rubric)
        self.judge_id = self.inner.judge_id
        self.items = 0

    async def judge(self, batch):
        self.items += len(batch)
        verdicts = await self.inner.judge(batch)
        for item, v in zip(batch, verdicts, strict=True):
            if v.parse_ok and "format" in v.scores:
                v.scores.update(safety=1.0, think_safety=1.0, format=float(len(item.response) % 2))
                v.unsafe = False
        return verdicts


def _cfg(tmp_path, gym_model_dir, **grpo):
    return TrainConfig.model_validate(
        {
            "model": {"path": str(gym_model_dir)},
            "data": {"path": "unused.jsonl"},
            "output_dir": str(tmp_path / "run"),
            "grpo": {
                "learning_rate": 1e-2,
                "num_generations": 4,
                "per_device_train_batch_size": 8,
                "gradient_accumulation_steps": 1,
                "max_steps": 2,
                "beta": 0.0,
                "max_completion_length": 16,
                "device": "cpu",
                "save_steps": 1000,
                **grpo,
            },
        }
    )


@pytest.mark.slow
def test_grpo_steps_train_and_log(tmp_path, gym_dir, gym_model_dir):
    from safer_vlm.generation.base import GenRequest
    from safer_vlm.generation.messages import build_messages, processor_inputs
    from safer_vlm.models.loading import load_policy
    from safer_vlm.train.grpo import METRICS_NAME, run_grpo

    cfg = _cfg(tmp_path, gym_model_dir)
    samples = list(read_samples(gym_dir / "train.jsonl"))
    model, processor = load_policy(gym_model_dir, dtype="float32")
    judge = CountingJudge(cfg.rubric)
    inner = SafetyAwareGroupRollout(judge, cfg.rubric, RolloutConfig(reflection=False))
    seen = []

    def spy(generator, batch, n):
        groups = inner(generator, batch, n)
        seen.append((batch, groups))
        return groups

    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    trainer = run_grpo(cfg, run_dir, model, processor, samples, judge, group_rollout=spy)
    assert trainer.state.global_step == 2

    changed = sum(float((before[k] - v.detach()).abs().sum()) for k, v in model.named_parameters())
    assert changed > 0

    # Each answer was judged exactly once, in the rollout: the reward functions reused the verdicts.
    answers = sum(len(g) for _, groups in seen for g in groups)
    assert answers == 2 * 8 and judge.items == answers

    # The prompt ids TRL trains on are the processor's own prompt, image tokens expanded.
    image_pad = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    for batch, groups in seen:
        for sample, group in zip(batch, groups, strict=True):
            enc = processor_inputs(processor, [build_messages(GenRequest(sample=sample))])
            expected = enc["input_ids"][0][enc["attention_mask"][0].bool()].tolist()
            for sg in group:
                assert sg.generation.prompt_ids == expected
            assert expected.count(image_pad) == int(enc["image_grid_thw"][0].prod()) // 4

    rows = [json.loads(x) for x in (run_dir / METRICS_NAME).read_text().splitlines()]
    logged = [r for r in rows if "reward" in r]
    assert len(logged) == 2
    for name in [*cfg.rubric.scored_criteria, "penalty_hallucination", "penalty_contradiction", "safety_gate"]:
        assert f"rewards/{name}/mean" in logged[0]
    for key in ("loss", "reward_std", "frac_reward_zero_std", "judge/parse_failures", "rewards/structured_reward/mean"):
        assert key in logged[0]


def _verdict(safety: float) -> Verdict:
    scores = {"safety": safety, "helpfulness": 1.0, "coherence": 1.0, "grounding": 1.0, "format": 1.0,
              "think_safety": 1.0}
    return Verdict(parse_ok=True, scores=scores, penalties={"hallucination": False, "contradiction": True})


def _member(text, verdict, reflected=False, prompt_ids=(1, 2, 3), logprobs=(-0.5, -0.25)):
    gen = Generation(text=text, completion_ids=[7, 8], logprobs=list(logprobs), prompt_ids=list(prompt_ids))
    rubric = Rubric()
    return GroupMember(
        generation=gen,
        verdict=verdict,
        reward=compose_reward(verdict, rubric),
        reflected=reflected,
        unsafe=rubric.is_unsafe(verdict),
    )


def test_flatten_attributes_reflections_to_the_original_prompt():
    bad = Verdict.parse_failure("???", "j", "unreadable")
    group = [
        _member("a", _verdict(1.0)),
        _member("b", bad),
        _member("c", _verdict(0.9), reflected=True),
        _member("d", _verdict(0.2)),
    ]
    out = flatten_groups([group], 4)
    assert out["prompt_ids"] == [[1, 2, 3]] * 4
    assert out["logprobs"][0] == [-0.5, -0.25]
    assert all(math.isnan(x) for x in out["logprobs"][2])
    assert [r["reflected"] for r in out["scored"]] == [False, False, True, False]
    assert out["reflected"] == [False, False, True, False]
    # A group whose every answer is a correction still trains on the original prompt.
    all_corrected = [_member(t, _verdict(0.9), reflected=True) for t in "wxyz"]
    assert flatten_groups([all_corrected], 4)["prompt_ids"] == [[1, 2, 3]] * 4
    # A member carrying other prompt ids (e.g. the reflection context) is a bug upstream: refused.
    stray = [*group[:3], _member("e", _verdict(0.9), reflected=True, prompt_ids=(9, 9))]
    with pytest.raises(ValueError, match="different prompt ids"):
        flatten_groups([stray], 4)
    assert out["scored"][1]["reward"] is None and out["scored"][1]["parse_ok"] is False
    with pytest.raises(ValueError, match="exactly 4"):
        flatten_groups([group[:3]], 4)


def test_issue_5_flatten_always_returns_logprob_rows():
    """Issue 11, finding 5: a batch made only of corrections (or from a generator without logprobs)
    gave `logprobs=None`, and TRL's importance-sampling correction then computed `old - None`."""
    only_corrections = [[_member(t, _verdict(0.9), reflected=True) for t in "wx"], [_member("y", _verdict(0.9), reflected=True)] * 2]
    out = flatten_groups(only_corrections, 2)
    assert out["logprobs"] is not None and len(out["logprobs"]) == 4
    assert all(len(row) == 2 and all(math.isnan(x) for x in row) for row in out["logprobs"])
    no_logprobs = [_member("a", _verdict(1.0), logprobs=(0.0, 0.0))] * 2
    for m in no_logprobs:
        m.generation.logprobs = None
    assert all(all(math.isnan(x) for x in row) for row in flatten_groups([no_logprobs], 2)["logprobs"])
    # TRL's own arithmetic on these rows (grpo_trainer: pad, old - sampling, nan_to_num, exp): ratio 1
    import torch
    from trl.trainer.utils import pad

    sampling = pad([torch.tensor(r) for r in out["logprobs"]], padding_value=0.0, padding_side="right")
    old = torch.full_like(sampling, -1.5)
    ratio = torch.exp(torch.nan_to_num((old - sampling) * torch.ones_like(sampling), nan=0.0))
    assert torch.equal(ratio, torch.ones_like(ratio))
    bad = _member("z", _verdict(1.0), logprobs=(-0.1,))
    with pytest.raises(ValueError, match="1 logprobs for 2 tokens"):
        flatten_groups([[bad, bad]], 2)


def test_scored_records_carry_the_rubric_decision_not_the_raw_flag():
    flagged_high = _verdict(1.0)
    flagged_high.unsafe = True  # the judge's flag at 10/10: unsafe by the rubric's rule
    harmful_think = _verdict(1.0)
    harmful_think.scores["think_safety"] = 0.0  # no flag, but unsafe reasoning
    out = flatten_groups([[_member("a", flagged_high), _member("b", harmful_think)]], 2)
    assert [r["unsafe"] for r in out["scored"]] == [True, True]
    assert all(r["parts"]["gate"] == 1.0 for r in out["scored"])


def test_reward_functions_weights_and_unscorable_rows():
    funcs, weights = reward_functions(Rubric())
    names = [f.__name__ for f in funcs]
    assert names[0] == "structured_reward" and weights[0] == 1.0
    assert set(weights[1:]) == {0.0}
    assert "safety" in names and "think_safety" in names and "penalty_contradiction" in names
    group = [_member("a", _verdict(1.0)), _member("b", Verdict.parse_failure("?", "j", "x"))]
    scored = flatten_groups([group], 2)["scored"]
    metrics = {}
    total = funcs[0](prompts=[0, 0], completions=[0, 0], scored=scored,
                              log_metric=lambda k, v: metrics.__setitem__(k, v))
    assert total[1] is None and total[0] == pytest.approx(scored[0]["reward"])
    assert metrics["judge/parse_failures"] == 1.0
    # A parse failure is None in every function, so TRL treats the row as unscorable (advantage 0).
    for f in funcs[1:]:
        assert f(prompts=[0, 0], completions=[0, 0], scored=scored)[1] is None
    safety = funcs[names.index("safety")](prompts=[0, 0], completions=[0, 0], scored=scored)
    assert safety[0] == 1.0


def test_metrics_callback_stops_a_diverged_run(tmp_path):
    from types import SimpleNamespace

    from safer_vlm.errors import SaferVLMError
    from safer_vlm.train.trl_adapter import metrics_callback

    callback = metrics_callback(tmp_path / "metrics.jsonl")
    state = SimpleNamespace(global_step=3)
    callback.on_log(None, state, None, logs={"loss": 0.1, "grad_norm": 2.0})
    with pytest.raises(SaferVLMError, match="diverged at step 3: grad_norm"):
        callback.on_log(None, state, None, logs={"loss": 0.1, "grad_norm": float("nan")})
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and rows[1]["grad_norm"] is None  # the bad step is still recorded

"""GRPO through TRL on the tiny model: weights move, prompt ids match the processor, rewards reuse the
rollout's verdicts, every criterion is logged; plus the pure parts of the adapter."""

from __future__ import annotations

import json
import math

import pytest

from safer_vlm.data.schema import read_samples
from safer_vlm.errors import ConfigError
from safer_vlm.judge.base import Verdict
from safer_vlm.judge.rubric import Rubric
from safer_vlm.reward import compose_reward
from safer_vlm.rollout.answers import RolloutResult, TrainingRow
from safer_vlm.rollout.config import RolloutConfig
from safer_vlm.rollout.safety_aware import SafetyAwareRollout
from safer_vlm.train.config import TrainConfig
from safer_vlm.train.trl_adapter import METRICS_KEY, ROW_KEY, reward_functions, trl_rollout_output


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
    inner = SafetyAwareRollout(judge, cfg.rubric, RolloutConfig(reflection=False))
    seen = []

    def spy(generator, batch, n):
        result = inner(generator, batch, n)
        seen.append((batch, result))
        return result

    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    trainer = run_grpo(cfg, run_dir, model, processor, samples, judge, group_rollout=spy)
    assert trainer.state.global_step == 2

    changed = sum(float((before[k] - v.detach()).abs().sum()) for k, v in model.named_parameters())
    assert changed > 0

    # Each answer was judged exactly once, in the rollout: the reward functions reused the verdicts.
    answers = sum(len(result.rows) for _, result in seen)
    assert answers == 2 * 8 and judge.items == answers

    # The prompt ids TRL trains on are the processor's own prompt, image tokens expanded.
    image_pad = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    for batch, result in seen:
        for sample, group in zip(batch, result.groups, strict=True):
            enc = processor_inputs(processor, [build_messages(GenRequest(sample=sample))])
            expected = enc["input_ids"][0][enc["attention_mask"][0].bool()].tolist()
            rows = [row for row in result.rows if row.group_index == group.sample_index]
            assert len(rows) == 4 and all(row.sample_id == sample.id for row in rows)
            for row in rows:
                assert row.prompt_ids == expected
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


def _row(verdict, group=0, reflected=False, prompt_ids=(1, 2, 3), logprobs=(-0.5, -0.25), completion=(7, 8),
         judge_error=None):
    """A row as the rollout builds it: the reward and the unsafe decision from `verdict` under the
    default rubric; a correction's logprobs NaN."""
    rubric = Rubric()
    reward = compose_reward(verdict, rubric)
    parts = rubric.unsafe_parts(verdict)
    return TrainingRow(
        group_index=group, sample_id=f"s{group}", uid=f"s{group}/{len(completion)}", prompt_ids=list(prompt_ids),
        completion_ids=list(completion),
        logprobs=[math.nan] * len(completion) if reflected else list(logprobs),
        reward=None if reward is None else reward.total, reward_parts={} if reward is None else dict(reward.parts),
        unsafe_parts=None if parts is None else tuple(parts), reflected=reflected, judge_id="j",
        judge_error=judge_error, unparsed_reason=None if verdict.parse_ok or judge_error else "unreadable",
    )


def _rollout_rows(verdicts=None, reflected=False, logprobs=(-0.5, -0.25)):
    """Two groups of two members built by the rollout's own row builder (`answers.training_rows`),
    so the NaN rule under test is the rollout's."""
    from safer_vlm.data.schema import SafetySample
    from safer_vlm.generation.base import Generation
    from safer_vlm.rollout.answers import Answer, RolloutGroup, training_rows

    rubric = Rubric()
    verdicts = verdicts or [_verdict(0.9)] * 4
    groups = []
    for gi in range(len(verdicts) // 2):
        sample = SafetySample(id=f"s{gi}", source="test", question="q")
        originals, members = [], []
        for j, v in enumerate(verdicts[2 * gi : 2 * gi + 2]):
            gen = Generation(text="a", completion_ids=[7, 8], prompt_ids=[1, 2, 3],
                             logprobs=None if logprobs is None else list(logprobs))
            parts = rubric.unsafe_parts(v)
            a = Answer(sample_index=gi, slot=j, generation=gen, uid=f"s{gi}/{j}", verdict=v,
                       reward=compose_reward(v, rubric), unsafe_parts=None if parts is None else list(parts))
            originals.append(a)
            if reflected:
                corr_gen = Generation(text="c", completion_ids=[5, 6], prompt_ids=[1, 2, 3, 4, 5], logprobs=[-0.1, -0.2])
                a = Answer(sample_index=gi, slot=j, generation=corr_gen, uid=f"s{gi}/{j}.r1", verdict=v,
                           reward=compose_reward(v, rubric), unsafe_parts=a.unsafe_parts, reflected=True, corrects=j)
            members.append(a)
        groups.append(RolloutGroup(sample=sample, sample_index=gi, originals=originals, members=members))
    return training_rows(groups)


def _result(rows, metrics=None):
    return RolloutResult(groups=[], rows=rows, metrics=dict(metrics or {}))


def _trl_reward_kwargs(out: dict) -> dict:
    """What TRL 1.16 hands each reward function of a `rollout_func` output (grpo_trainer: each extra
    key of a list value goes to its row, a non-list value to every row; then one list per key)."""
    n = len(out["completion_ids"])
    extra = {k: v for k, v in out.items() if k not in ("prompt_ids", "completion_ids", "logprobs")}
    inputs = [{k: (v[i] if isinstance(v, list) else v) for k, v in extra.items()} for i in range(n)]
    return {k: [inp[k] for inp in inputs] for k in inputs[0]}


def test_one_conversion_from_a_hand_built_rollout_result():
    """The rollout result -> TRL conversion, field by field: ids in order, logprobs NaN exactly on the
    correction rows (and copied as they are elsewhere), the rollout's rewards relayed in row order
    (None for an unusable verdict), and the step's rollout metrics logged once per reward call.
    Catches: a conversion that drops or reorders rows, re-derives logprobs (a reflected row keeping
    its sampling logprobs, an original losing them), recomputes rewards instead of relaying them,
    or loses the rollout's metrics on the way to TRL's log."""
    bad = Verdict.parse_failure("???", "j", "unreadable")
    rows = [
        _row(_verdict(1.0), group=0, completion=(7, 8), logprobs=(-0.5, -0.25)),
        _row(_verdict(0.9), group=0, completion=(9, 10, 11), reflected=True),  # a correction
        _row(bad, group=1, prompt_ids=(4, 5), completion=(12,), logprobs=(-1.0,)),
        _row(_verdict(0.2), group=1, prompt_ids=(4, 5), completion=(13, 14), logprobs=(-0.1, math.nan)),
    ]
    metrics = {"rollout/originals_unsafe_rate": 0.25, "rollout/reflection_rate": 0.5}
    out = trl_rollout_output(_result(rows, metrics), 2, ["s0", "s1"])

    assert out["prompt_ids"] == [[1, 2, 3], [1, 2, 3], [4, 5], [4, 5]]
    assert out["completion_ids"] == [[7, 8], [9, 10, 11], [12], [13, 14]]
    assert out["logprobs"][0] == [-0.5, -0.25] and out["logprobs"][2] == [-1.0]
    assert len(out["logprobs"][1]) == 3 and all(math.isnan(x) for x in out["logprobs"][1])
    assert out["logprobs"][3][0] == -0.1 and math.isnan(out["logprobs"][3][1])  # one unknown token stays NaN
    assert [math.isnan(x) for row in out["logprobs"] for x in row].count(True) == 4
    assert out[ROW_KEY] == rows and out[METRICS_KEY] == metrics

    funcs, _ = reward_functions(Rubric())
    logged: dict[str, list[float]] = {}
    kwargs = _trl_reward_kwargs(out)
    total = funcs[0](prompts=[0] * 4, completions=[0] * 4, log_metric=lambda k, v: logged.setdefault(k, []).append(v),
                     **kwargs)
    assert total == [rows[0].reward, rows[1].reward, None, rows[3].reward]
    assert total[0] > total[3] and total[1] is not None
    assert logged["rollout/originals_unsafe_rate"] == [0.25] and logged["rollout/reflection_rate"] == [0.5]
    assert logged["rollout/reflected_frac"] == [0.25] and logged["judge/parse_failures"] == [1.0]
    assert logged["judge/trained_rows_unsafe_rate"] == [1 / 3]  # of the three judged rows, the 0.2 one
    gate = funcs[[f.__name__ for f in funcs].index("safety_gate")](prompts=[0] * 4, completions=[0] * 4, **kwargs)
    assert gate == [0.0, 0.0, None, 1.0]


def test_conversion_refuses_groups_that_do_not_fit():
    """Rows that cannot be TRL's fixed groups are refused, not trained on the wrong prompt: a group
    of the wrong size (`append`), a member with other prompt ids (the reflection context), groups in
    another order than TRL's prompts, or logprobs that do not match the tokens."""
    group = [_row(_verdict(1.0)), _row(_verdict(0.9), reflected=True)]
    with pytest.raises(ValueError, match="has 3 answers; GRPO needs exactly 2"):
        trl_rollout_output(_result([*group, _row(_verdict(0.5))]), 2)
    with pytest.raises(ValueError, match="has 1 answers; GRPO needs exactly 2"):
        trl_rollout_output(_result([group[0], _row(_verdict(0.5), group=1), _row(_verdict(0.5), group=1)]), 2)
    stray = [group[0], _row(_verdict(0.9), reflected=True, prompt_ids=(9, 9))]
    with pytest.raises(ValueError, match="different prompt ids"):
        trl_rollout_output(_result(stray), 2)
    with pytest.raises(ValueError, match="not \\['s1'\\]"):
        trl_rollout_output(_result(group), 2, ["s1"])
    with pytest.raises(ValueError, match="1 logprobs for 2 tokens"):
        trl_rollout_output(_result([_row(_verdict(1.0), logprobs=(-0.1,))] * 2), 2)
    # A group whose every answer is a correction still trains on the original prompt.
    all_corrected = [_row(_verdict(0.9), reflected=True) for _ in range(2)]
    assert trl_rollout_output(_result(all_corrected), 2)["prompt_ids"] == [[1, 2, 3]] * 2


def test_append_groups_are_refused_for_trl(tmp_path, gym_model_dir):
    """`append` grows groups past num_generations: the trainer's rollout refuses it at once (one
    ConfigError naming the policy) instead of failing at the first step."""
    from safer_vlm.train.grpo import make_group_rollout

    cfg = _cfg(tmp_path, gym_model_dir).model_copy(update={"rollout": RolloutConfig(policy="append")})
    with pytest.raises(ConfigError, match="append"):
        make_group_rollout(cfg, judge=None)


def test_issue_5_conversion_always_returns_logprob_rows():
    """Issue 11, finding 5: a batch made only of corrections (or from a generator without logprobs)
    gave `logprobs=None`, and TRL's importance-sampling correction then computed `old - None`."""
    out = trl_rollout_output(_result(_rollout_rows(reflected=True)), 2)
    assert out["logprobs"] is not None and len(out["logprobs"]) == 4
    assert all(len(row) == 2 and all(math.isnan(x) for x in row) for row in out["logprobs"])
    no_logprobs = trl_rollout_output(_result(_rollout_rows(reflected=False, logprobs=None)), 2)
    assert all(len(row) == 2 and all(math.isnan(x) for x in row) for row in no_logprobs["logprobs"])
    # TRL's own arithmetic on these rows (grpo_trainer: pad, old - sampling, nan_to_num, exp): ratio 1
    import torch
    from trl.trainer.utils import pad

    sampling = pad([torch.tensor(r) for r in out["logprobs"]], padding_value=0.0, padding_side="right")
    old = torch.full_like(sampling, -1.5)
    ratio = torch.exp(torch.nan_to_num((old - sampling) * torch.ones_like(sampling), nan=0.0))
    assert torch.equal(ratio, torch.ones_like(ratio))


def test_rows_carry_the_rubric_decision_not_the_raw_flag():
    flagged_high = _verdict(1.0)
    flagged_high.unsafe = True  # the judge's flag at 10/10: unsafe by the rubric's rule
    harmful_think = _verdict(1.0)
    harmful_think.scores["think_safety"] = 0.0  # no flag, but unsafe reasoning
    rows = _rollout_rows(verdicts=[flagged_high, harmful_think])
    out = trl_rollout_output(_result(rows), 2)
    assert [r.unsafe for r in out[ROW_KEY]] == [True, True]
    assert [r.unsafe_parts for r in out[ROW_KEY]] == [("answer",), ("reasoning",)]
    assert all(r.reward_parts["gate"] == 1.0 for r in out[ROW_KEY])


def test_reward_functions_weights_and_unscorable_rows():
    funcs, weights = reward_functions(Rubric())
    names = [f.__name__ for f in funcs]
    assert names[0] == "structured_reward" and weights[0] == 1.0
    assert set(weights[1:]) == {0.0}
    assert "safety" in names and "think_safety" in names and "penalty_contradiction" in names
    rows = [_row(_verdict(1.0)), _row(Verdict.parse_failure("?", "j", "x"))]
    kwargs = _trl_reward_kwargs(trl_rollout_output(_result(rows), 2))
    metrics = {}
    total = funcs[0](prompts=[0, 0], completions=[0, 0], log_metric=lambda k, v: metrics.__setitem__(k, v), **kwargs)
    assert total[1] is None and total[0] == pytest.approx(rows[0].reward)
    assert metrics["judge/parse_failures"] == 1.0
    # A parse failure is None in every function, so TRL treats the row as unscorable (advantage 0).
    for f in funcs[1:]:
        assert f(prompts=[0, 0], completions=[0, 0], **kwargs)[1] is None
    safety = funcs[names.index("safety")](prompts=[0, 0], completions=[0, 0], **kwargs)
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

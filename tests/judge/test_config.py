"""Judge YAML configs: the discriminated union, path resolution, and errors that never echo a key."""

from __future__ import annotations

from pathlib import Path

import pytest

from safer_vlm.errors import ConfigError
from safer_vlm.judge.config import (
    EnsembleJudgeConfig,
    OpenAICompatJudgeConfig,
    RulesJudgeConfig,
    load_judge_config,
    parse_judge_config,
)
from safer_vlm.judge.ensemble import EnsembleJudge
from safer_vlm.judge.factory import build_judge
from safer_vlm.judge.rubric import Rubric

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "judge"


def test_shipped_configs_load_with_paths_resolved():
    cfg = load_judge_config(CONFIGS / "openai_compat.yaml")
    assert isinstance(cfg, OpenAICompatJudgeConfig) and cfg.concurrency == 64 and cfg.temperature == 0
    assert cfg.cache_dir.is_absolute()
    ens = load_judge_config(CONFIGS / "ensemble.yaml")
    assert isinstance(ens, EnsembleJudgeConfig) and isinstance(ens.members[2], RulesJudgeConfig)
    assert all(m.cache_dir.is_absolute() for m in ens.members[:2])


def test_defaults():
    cfg = parse_judge_config({"backend": "openai_compat", "base_url": "http://h/v1", "model": "m"})
    assert (cfg.concurrency, cfg.timeout_s, cfg.max_retries, cfg.temperature, cfg.cache_dir) == (
        64,
        30.0,
        5,
        0.0,
        None,
    )


@pytest.mark.parametrize(
    "data, message",
    [
        ({"backend": "nope"}, "does not match any of the expected tags"),
        ({"backend": "openai_compat", "model": "m"}, "missing key 'openai_compat.base_url'"),
        ({"backend": "openai_compat", "base_url": "ftp://x", "model": "m"}, "http://"),
        ({"backend": "rules", "extra": 1}, "unknown key 'rules.extra'"),
        ({"backend": "ensemble", "members": []}, "members"),
        ({"backend": "ensemble", "members": [{"backend": "rules"}], "combine": "max"}, "combine"),
    ],
)
def test_bad_configs_are_one_line_errors(data, message):
    with pytest.raises(ConfigError, match=message):
        parse_judge_config(data)


def test_a_key_pasted_into_api_key_env_is_refused_and_not_echoed():
    with pytest.raises(ConfigError) as exc:
        parse_judge_config(
            {
                "backend": "openai_compat",
                "base_url": "http://h/v1",
                "model": "m",
                "api_key_env": "sk-live-abc123",
            }
        )
    assert "NAME of an environment variable" in str(exc.value) and "sk-live-abc123" not in str(exc.value)


def test_factory_builds_each_backend():
    rubric = Rubric.default()
    ens = build_judge(
        parse_judge_config(
            {
                "backend": "ensemble",
                "members": [
                    {"backend": "rules"},
                    {"backend": "openai_compat", "base_url": "http://h/v1", "model": "m"},
                ],
            }
        ),
        rubric,
    )
    assert isinstance(ens, EnsembleJudge) and ens.member_ids == ["rules-v1", "openai:m"]


def test_rules_backend_with_an_unsupported_rubric_is_a_config_error():
    rubric = Rubric(criteria={"safety": 1.0, "wit": 0.5}, report_only=[], unsafe_reasoning_free=True)
    with pytest.raises(ConfigError, match="rules"):
        build_judge(RulesJudgeConfig(), rubric)


def test_issue_17_train_config_refuses_a_judge_max_tokens_below_the_longest_verdict():
    """Validation of a training config checks the judge's max_tokens (ensemble members too) against
    the rubric's longest schema-shaped verdict, before anything starts."""
    from safer_vlm.errors import ConfigError
    from safer_vlm.train.config import TrainConfig

    judge = {"backend": "openai_compat", "base_url": "http://127.0.0.1:1/v1", "model": "m", "max_tokens": 200}
    base = {"model": {"path": "m"}, "data": {"path": "d.jsonl"}}
    for j in (judge, {"backend": "ensemble", "members": [{"backend": "rules"}, judge]}):
        with pytest.raises((ConfigError, ValueError), match="max_tokens 200 is below the longest verdict"):
            TrainConfig.model_validate({**base, "judge": j})
    TrainConfig.model_validate({**base, "judge": {**judge, "max_tokens": 512}})
    TrainConfig.model_validate({**base, "judge": judge, "rubric": {"rationale_max_chars": 5}})

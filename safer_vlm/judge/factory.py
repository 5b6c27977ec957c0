"""JudgeConfig -> Judge. Backends import lazily, so a rules-only run never loads aiohttp or torch."""

from __future__ import annotations

from safer_vlm.errors import ConfigError
from safer_vlm.judge.base import Judge
from safer_vlm.judge.config import (
    EnsembleJudgeConfig,
    HFLocalJudgeConfig,
    OpenAICompatJudgeConfig,
    RulesJudgeConfig,
)
from safer_vlm.judge.rubric import Rubric


def build_judge(cfg: object, rubric: Rubric) -> Judge:
    """Build the judge a config describes (members of an ensemble recursively)."""
    if isinstance(cfg, RulesJudgeConfig):
        from safer_vlm.judge.rules import RuleJudge

        try:
            return RuleJudge(rubric)
        except ValueError as exc:
            raise ConfigError(f"judge backend 'rules': {exc}") from None
    if isinstance(cfg, OpenAICompatJudgeConfig):
        from safer_vlm.judge.openai_compat import OpenAICompatJudge

        return OpenAICompatJudge(cfg, rubric)
    if isinstance(cfg, HFLocalJudgeConfig):
        from safer_vlm.judge.hf_local import HFLocalJudge

        return HFLocalJudge(cfg, rubric)
    if isinstance(cfg, EnsembleJudgeConfig):
        from safer_vlm.judge.ensemble import EnsembleJudge

        members = [build_judge(m, rubric) for m in cfg.members]
        return EnsembleJudge(members, rubric, cfg.combine, cfg.unsafe_vote, cfg.judge_id)
    raise ConfigError(f"unknown judge config {type(cfg).__name__}")


def max_in_flight(cfg: object) -> int:
    """How many items a runner should keep in flight so the judge's own concurrency stays busy."""
    if isinstance(cfg, EnsembleJudgeConfig):
        return max(max_in_flight(m) for m in cfg.members)
    if isinstance(cfg, OpenAICompatJudgeConfig):
        return 2 * cfg.concurrency
    return 2 * getattr(cfg, "batch_size", 16)

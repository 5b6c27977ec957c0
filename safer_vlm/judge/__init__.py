"""Judges: rubric, parser and backends (OpenAI-compatible, local HF, rules, ensemble)."""

from safer_vlm.judge.parse import parse_verdict

__all__ = ["parse_verdict"]

"""Judges: rubric, parser and backends (OpenAI-compatible, local HF, rules, ensemble)."""

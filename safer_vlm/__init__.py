"""safer-vlm: safety-aware GRPO for vision-language models (SaFeR-VLM, arXiv 2510.06871)."""

__version__ = "0.1.0"

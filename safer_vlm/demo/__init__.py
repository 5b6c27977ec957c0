"""The laptop demo: a tiny random Qwen2.5-VL trained on the synthetic safety gym with the rule judge,
CPU only, offline, as a client of the training pipeline (`train.grpo.train` with hooks).

- `config`: DemoConfig (TrainConfig with the demo's defaults and sections) and `load_demo_config`.
- `run`: `run_demo`, configuration + `train()` + held-out scoring + the report.
- `heldout`: the held-out scorer (evaluation's `jsonl` protocol) and the unsafe-rule figures.
- `reflection_warmstart`: the warm start in the reflection context (a hook after the warm start).
- `ablation`: plain GRPO against each reflection group policy over seeds, from shared warm starts.
- `report`: report.md, the reward curve, the ablation table and curves.

The command line is `safer_vlm/cli/demo.py`; nothing here imports typer.
"""

from safer_vlm.demo.config import DEFAULT_GYM, DemoConfig, load_demo_config

__all__ = ["DEFAULT_GYM", "DemoConfig", "load_demo_config"]

"""Evaluation: each benchmark's own scoring protocol, the unified rubric, reasoning-trace safety,
per-category breakdowns and judge agreement (`safer-vlm eval`), and the paper-shaped report
(`safer-vlm report`). Sits on top of data, generation and judge; never imports train."""

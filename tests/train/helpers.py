"""Helpers shared by the training tests."""

from __future__ import annotations

from pathlib import Path


def write_train_config(tmp_path: Path, gym_dir: Path, gym_model_dir: Path, **grpo) -> Path:
    """A CLI training config on the session's gym and tiny model (reflection on, CPU, short answers);
    `grpo` overrides the optimiser section. Output goes to `<tmp_path>/run`."""
    import yaml

    cfg = {
        "model": {"path": str(gym_model_dir)},
        "data": {"path": str(gym_dir / "train.jsonl"), "heldout_split": None},
        "rollout": {"reflection": True},
        "grpo": {
            "learning_rate": 1e-3, "num_generations": 4, "per_device_train_batch_size": 8,
            "gradient_accumulation_steps": 1, "max_steps": 3, "beta": 0.01, "max_completion_length": 8,
            "device": "cpu", "save_steps": 1000, **grpo,
        },
        "output_dir": str(tmp_path / "run"),
    }
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path

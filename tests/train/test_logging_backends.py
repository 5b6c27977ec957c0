"""`logging.report_to: [tensorboard]` writes an event file under the run folder with every logged
metric, and every run records the package versions beside its resolved config."""

from __future__ import annotations

import json

import pytest

from safer_vlm.cli import main
from safer_vlm.errors import ConfigError
from safer_vlm.train.logging_backends import TENSORBOARD_DIR, VERSIONS_NAME, backend_callbacks
from tests.train.helpers import write_train_config


def test_unknown_backend_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="unknown backend"):
        backend_callbacks(["mlflow"], tmp_path)


@pytest.mark.slow
def test_tensorboard_gets_every_criterion_and_rollout_metric(tmp_path, gym_dir, gym_model_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config = write_train_config(tmp_path, gym_dir, gym_model_dir, max_steps=2, beta=0.0)
    main(["train", "--config", str(config), "--set", "logging.report_to=[tensorboard]"])
    run = tmp_path / "run"
    events = list((run / TENSORBOARD_DIR).glob("events.out.tfevents.*"))
    assert events
    acc = EventAccumulator(str(run / TENSORBOARD_DIR))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    logged = {k for r in rows if "loss" in r and "train_runtime" not in r for k, v in r.items()
              if k != "step" and isinstance(v, (int, float))}
    for key in ("rewards/safety/mean", "rewards/penalty_hallucination/mean", "rewards/safety_gate/mean",
                "rollout/reflection_rate", "judge/parse_failure_rate", "loss", "grad_norm"):
        assert key in logged
    missing = {k for k in logged if f"train/{k}" not in tags}
    assert not missing, f"in metrics.jsonl but not in TensorBoard: {sorted(missing)[:5]}"
    versions = json.loads((run / VERSIONS_NAME).read_text())
    assert versions["torch"] and versions["transformers"] and versions["trl"]
    assert (run / "config.yaml").is_file()


def test_wandb_without_the_package_is_a_config_error(tmp_path):
    try:
        import wandb  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match="wandb"):
            backend_callbacks(["wandb"], tmp_path)
    else:
        pytest.skip("wandb is installed here: the offline backend is built instead")

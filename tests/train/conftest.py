"""Fixtures for training tests: a small gym and a tiny model whose tokenizer knows the gym's texts."""

from __future__ import annotations

from pathlib import Path

import pytest

GYM = {"seed": 0, "n_train": 16, "n_heldout": 8, "image_size": 56}


@pytest.fixture(scope="session")
def gym_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from safer_vlm.gym import GymConfig, build_gym

    out = tmp_path_factory.mktemp("gym") / "gym"
    build_gym(GymConfig(**GYM), out)
    return out


@pytest.fixture(scope="session")
def gym_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from safer_vlm.gym import GymConfig, gym_corpus
    from safer_vlm.models.tiny import build_tiny_vlm

    out = tmp_path_factory.mktemp("gym_model") / "model"
    return build_tiny_vlm(out, seed=0, extra_corpus=list(gym_corpus(GymConfig(**GYM))))


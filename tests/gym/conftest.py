"""A small gym built once per test session (building takes a fraction of a second)."""

from __future__ import annotations

from pathlib import Path

import pytest

from safer_vlm.gym import GymConfig, GymPaths, build_gym


@pytest.fixture(scope="session")
def small_gym_cfg() -> GymConfig:
    return GymConfig(seed=7, n_train=200, n_heldout=100, image_size=56)


@pytest.fixture(scope="session")
def small_gym(tmp_path_factory: pytest.TempPathFactory, small_gym_cfg: GymConfig) -> GymPaths:
    return build_gym(small_gym_cfg, Path(tmp_path_factory.mktemp("gym")))

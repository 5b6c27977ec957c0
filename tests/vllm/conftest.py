"""Tests against a real vLLM OpenAI-compatible server, started by `make test-vllm`
(scripts/test_vllm.sh), which sets SAFER_VLM_VLLM_URL. Without it these files are not collected at
all (plain `make test` has no server; nothing here is ever skipped): `.ci/run` runs both targets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

URL = os.environ.get("SAFER_VLM_VLLM_URL")
MODEL = os.environ.get("SAFER_VLM_VLLM_MODEL", "tiny-judge")


def pytest_ignore_collect(collection_path: Path, config) -> bool | None:
    if URL is None and collection_path.suffix == ".py" and collection_path.name.startswith("test_"):
        return True
    return None


GYM = {"seed": 0, "n_train": 8, "n_heldout": 4, "image_size": 56}


@pytest.fixture(scope="session")
def vllm_url() -> str:
    assert URL, "SAFER_VLM_VLLM_URL is not set: run these through `make test-vllm`"
    return URL


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


def judge_section(url: str, **over) -> dict:
    """The openai_compat judge on the test server: text-only model, so no images are sent."""
    return {
        "backend": "openai_compat",
        "base_url": url,
        "model": MODEL,
        "send_images": False,
        "concurrency": 8,
        "timeout_s": 120,
        "max_retries": 2,
        "max_tokens": 512,
        **over,
    }

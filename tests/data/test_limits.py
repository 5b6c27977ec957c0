"""Loader limits: a record far beyond any real release is one problem line, refused before it costs.

Defect caught (issue 14): `data validate` accepted a 5 MB question; `curate` then tokenised 5 M
tokens, grew to 24 GB and was OOM-killed. Every loader now refuses such a record (`too_long`,
`too_many_images`) in the shared validation step (data validate, curate and eval all load through
`load_source`), and the other records go on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from safer_vlm.data.sources import load_source

REPO = Path(__file__).resolve().parents[2]
HUGE = "How do I? " * 500_000  # 5 MB of question


def _pool(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rows = [
        {"id": "ok1", "question": "Is this safe to eat?"},
        {"id": "huge", "question": HUGE},
        {"id": "ok2", "question": "Where can I buy a kitchen knife?"},
    ]
    path = folder / "pool.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_data_validate_refuses_a_5mb_record_fast_and_small(tmp_path):
    """Time and peak memory of a real `data validate` child (the kernel's own accounting, wait4)."""
    path = _pool(tmp_path / "data")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    log = tmp_path / "out.txt"
    start = time.perf_counter()
    with log.open("w") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "safer_vlm.cli", "data", "validate", str(path), "--source", "jsonl"],
            env=env, stdout=fh, stderr=subprocess.STDOUT,
        )
        _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    out = log.read_text()
    assert os.waitstatus_to_exitcode(status) == 0, out
    problems = [x for x in out.splitlines() if x.endswith("[too_long]")]
    assert problems == [f"{path}: record line 2: field 'question': 5000000 characters, over the limit of "
                        "32000 (max_text_chars) [too_long]"]
    assert "loaded 2 samples from 3 records; skipped 1" in out
    assert elapsed < 5.0, f"took {elapsed:.1f} s"
    assert usage.ru_maxrss * 1024 < 1024**3, f"peak RSS {usage.ru_maxrss / 1024:.0f} MiB"


def test_limits_apply_to_every_loader_and_are_configurable(tmp_path):
    path = _pool(tmp_path / "data")
    result = load_source("jsonl", path)
    assert [s.id for s in result.samples] == ["ok1", "ok2"]
    (problem,) = result.problems
    assert (problem.record, problem.field, problem.reason_code) == ("line 2", "question", "too_long")
    assert len(load_source("jsonl", path, max_text_chars=10_000_000).samples) == 3
    many = tmp_path / "many"
    many.mkdir()
    from PIL import Image

    Image.new("RGB", (8, 8)).save(many / "a.png")
    (many / "m.jsonl").write_text(json.dumps({"id": "m", "question": "q", "images": ["a.png"] * 17}) + "\n")
    (problem,) = load_source("jsonl", many / "m.jsonl").problems
    assert problem.reason_code == "too_many_images" and "17 images" in problem.message


def test_curate_skips_the_huge_record_and_goes_on(tmp_path):
    from tests.curate.conftest import ScriptedGenerator, ScriptedJudge
    from tests.curate.test_pipeline import make_config, run

    cfg = make_config(tmp_path, "out")
    pool = tmp_path / "data" / "pool.jsonl"
    with pool.open("a") as fh:
        fh.write(json.dumps({"id": "huge", "source": "pool", "question": HUGE}) + "\n")
    gen = ScriptedGenerator(garble=0.1)
    start = time.perf_counter()
    res = run(cfg, gen)
    assert time.perf_counter() - start < 30
    assert all(len(p) < 1000 for p in gen.prompts_seen)  # the policy never saw it
    assert any("too_long" in x and "question" in x for x in (cfg.output_dir / "problems.txt").read_text().splitlines())
    assert res.curated and ScriptedJudge

"""Loader limits: a record far beyond any real release is one problem line, refused before it costs.

Defect caught (issue 14): `data validate` accepted a 5 MB question; `curate` then tokenised 5 M
tokens, grew to 24 GB and was OOM-killed. Every loader now refuses such a record (`too_long`,
`too_many_images`) in the shared validation step (data validate, curate and eval all load through
`load_source`), and the other records go on."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from safer_vlm.data.sources import load_source
from tests.child_usage import HUGE, commands, run_measured, write_records


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
    log = tmp_path / "out.txt"
    rc, elapsed, peak = run_measured(["data", "validate", str(path), "--source", "jsonl"], log)
    out = log.read_text()
    assert rc == 0, out
    problems = [x for x in out.splitlines() if x.endswith("[too_long]")]
    assert problems == [f"{path}: record line 2: field 'question': 5000000 characters, over the limit of "
                        "32000 (max_text_chars) [too_long]"]
    assert "loaded 2 samples from 3 records; skipped 1" in out
    assert elapsed < 5.0, f"took {elapsed:.1f} s"
    assert peak < 1024**3, f"peak RSS {peak / 2**20:.0f} MiB"


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    from safer_vlm.models.tiny import build_tiny_vlm

    return build_tiny_vlm(tmp_path_factory.mktemp("tiny") / "model", seed=0)


@pytest.mark.parametrize("command", ["curate", "eval"])
def test_curate_and_eval_skip_the_5mb_record_small_and_go_on(tmp_path, tiny_model, command):
    """`curate` and `eval` as a user runs them (child process, the tiny model, the rule judge) on a
    file whose middle record is a 5 MB question. Defect caught: before the loader limits `curate`
    tokenised the 5 M characters and was OOM-killed at 24 GB; a loader that lets the record through
    shows it here as a peak over 1 GiB, as the record reaching the policy (`huge` among the scored
    prompts / answers), or as no `too_long` problem line. The whole run's time bound is loose (model
    load and generation included, on a shared CPU); the refusal's own cost, side by side with a run
    without the record, is `benchmarks/oversized_record.py` (at most 1 s and +13 MiB measured, 2026-12-03)."""
    data = write_records(tmp_path / "pool.jsonl", huge=True)
    log = tmp_path / "out.txt"
    rc, elapsed, peak = run_measured(commands(tmp_path, tiny_model, data, "t")[command], log)
    out = log.read_text()
    assert rc == 0, out
    assert peak < 1024**3, f"peak RSS {peak / 2**20:.0f} MiB"
    assert elapsed < 60, f"took {elapsed:.1f} s"
    if command == "curate":
        folder = tmp_path / "curated_t"
        (problem,) = (folder / "problems.txt").read_text().splitlines()
        assert "too_long" in problem and "question" in problem and "line 2" in problem
        stats = (folder / "qibox_stats.jsonl").read_text().splitlines()
        curated = {json.loads(x)["id"] for x in (folder / "curated.jsonl").read_text().splitlines()}
        assert len(stats) == 2 and curated and curated <= {"ok1", "ok2"}  # the others went on, the huge one never
    else:
        results = json.loads((tmp_path / "eval_t" / "results.json").read_text())
        (bench,) = results["benchmarks"].values()
        assert bench["loading"]["loaded"] == 2 and bench["loading"]["skipped"] == {"too_long": 1}
        assert bench["generated_now"] == 2


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
    assert "huge" not in gen.prompts_seen and gen.prompts_seen  # the policy never saw it; the others went on
    assert any("too_long" in x and "question" in x for x in (cfg.output_dir / "problems.txt").read_text().splitlines())
    assert res.curated and ScriptedJudge

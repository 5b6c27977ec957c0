"""`safer-vlm eval` with the tiny model and the rule judge over all seven benchmark releases and a
JSONL, then `safer-vlm report`: every table cell in [0, 100], and the HTML renders in Chromium."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from safer_vlm.cli import main
from safer_vlm.eval.protocols import PROTOCOLS


@pytest.fixture(scope="module")
def evaluated(tiny_model_dir, benchmark_roots, tmp_path_factory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("e2e")
    judge = tmp / "rules.yaml"
    judge.write_text("backend: rules\n")
    args = ["eval", "--model", str(tiny_model_dir), "--judge", str(judge), "--out", str(tmp / "tiny"),
            "--temperature", "1.0", "--max-new-tokens", "8", "--samples-per-item", "1", "--label", "tiny",
            "--allow-missing-images"]  # the MM-SafetyBench fixture has no SD_TYPO folders
    for name, path in benchmark_roots.items():
        args += ["--benchmark", f"{name}={path}"]
    main(args)
    main(["report", str(tmp / "tiny"), "--out", str(tmp / "report")])
    return tmp / "tiny", tmp / "report"


def test_every_table_cell_of_every_benchmark_is_in_range(evaluated):
    _, report = evaluated
    data = json.loads((report / "report.json").read_text())
    assert set(data["columns"]) == set(PROTOCOLS)
    measured = [r for r in data["rows"] if r["kind"] == "measured"]
    assert [r["label"] for r in measured] == ["tiny"]
    for column in data["columns"]:
        for metric in ("safety", "helpfulness"):
            value = measured[0]["cells"][column][metric]
            assert value is not None and 0.0 <= value <= 100.0, (column, metric, value)
    quoted = [r for r in data["rows"] if r["kind"] == "quoted"]
    paper = next(r for r in quoted if r["label"].startswith("SaFeR-VLM-3B"))  # the paper's row, marked quoted
    assert paper["published_average"]["safety"] == pytest.approx(70.13) and paper["avg_safety"] is None
    md = (report / "report.md").read_text()
    assert "quoted, not measured" in md and "think safety" in md


def test_results_record_sampling_and_reasoning_safety(evaluated):
    run, _ = evaluated
    results = json.loads((run / "results.json").read_text())
    for name, bench in results["benchmarks"].items():
        assert bench["sampling"]["max_new_tokens"] == 8 and bench["sampling"]["temperature"] == 1.0
        scores = bench["judges"]["rules-v1"]
        assert scores["n_answers"] > 0
        assert scores["think_safety"] is None or 0 <= scores["think_safety"] <= 100, name


def test_html_report_renders_in_headless_chromium(evaluated):
    _, report = evaluated
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed, but CI must run the HTML render test (.ci/run installs it)")
        pytest.skip("chromium not installed here: the HTML render test runs under CI")
    dom = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000",
         "--dump-dom", (report / "report.html").as_uri()],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout
    assert '<table id="results">' in dom and "safety vs helpfulness scatter" in dom
    rendered = dom.split('data-plots-rendered="', 1)[1].split('"', 1)[0]
    # scatter, reasoning-vs-answer, and one per-category chart per benchmark, all decoded
    assert int(rendered) == 2 + len(PROTOCOLS)

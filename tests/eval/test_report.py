"""The report: rows per model and judge, quoted rows marked with unknown cells blank, differences
between two runs marked, and a folder of another model refused."""

from __future__ import annotations

import json

import pytest

from safer_vlm.errors import DataError
from safer_vlm.eval.report import build_rows, differences, write_report


def _scores(safety, helpfulness):
    return {"safety": safety, "helpfulness": helpfulness, "helpfulness_from": "protocol", "metrics": {},
            "rubric": {"safety": safety, "helpfulness": helpfulness}, "think_safety": 90.0,
            "unsafe_reasoning_safe_answer": 5.0, "by_category": {"a": {"n": 1, "safety": safety}},
            "n_answers": 4, "n_items": 4, "parse_failures": 0}


def _run(folder, label, vlguard, siuo, judges=("rules-v1",)):
    bench = lambda s, h: {"judges": {j: _scores(s, h) for j in judges}, "agreement": [],  # noqa: E731
                          "loading": {"missing_images": 0}, "contamination": {"checked": False},
                          "examples": [], "primary_judge": judges[0]}
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps({
        "model": label, "model_label": label, "judges": list(judges),
        "benchmarks": {"vlguard": bench(*vlguard), "siuo": bench(*siuo)}}))
    return folder


def test_two_runs_side_by_side_with_differences_marked(tmp_path):
    a = _run(tmp_path / "a", "before", (40.0, 80.0), (60.0, 50.0))
    b = _run(tmp_path / "b", "after", (70.0, 79.5), (60.0, 55.0))
    pub = tmp_path / "pub.yaml"
    pub.write_text("published:\n  - model: Paper\n    average: {safety: 70.13, helpfulness: 78.97}\n"
                   "    benchmarks: {vlguard: {safety: null, helpfulness: null}}\n")
    md, js, html = write_report([a, b], tmp_path / "r", [pub])
    data = json.loads(js.read_text())
    rows = {r["label"]: r for r in data["rows"]}
    assert rows["before"]["avg_safety"] == pytest.approx(50.0) and rows["after"]["avg_safety"] == pytest.approx(65.0)
    assert rows["Paper"]["kind"] == "quoted" and rows["Paper"]["avg_safety"] == 70.13
    (diff,) = data["differences"]
    assert diff["delta"]["vlguard/safety"] == pytest.approx(30.0)
    assert diff["delta"]["vlguard/helpfulness"] == pytest.approx(-0.5)
    text = md.read_text()
    assert "**+30.0▲**" in text and "-0.5 |" in text  # under a point: not marked
    assert "Paper *(quoted, not measured)* | — |" in text  # unknown published cells stay blank
    assert "class='up'" in html.read_text()


def test_second_judge_is_its_own_row():
    run = {"model": "m", "model_label": "m", "judges": ["j1", "j2"], "benchmarks": {"vlguard": {
        "judges": {"j1": _scores(10.0, 20.0), "j2": _scores(30.0, 40.0)}}}}
    _, rows = build_rows([run], [])
    assert [r["label"] for r in rows] == ["m", "m [j2]"]
    assert [r["cells"]["vlguard"]["safety"] for r in rows] == [10.0, 30.0]
    assert differences(["vlguard"], rows)[0]["delta"]["vlguard/safety"] == pytest.approx(20.0)


def test_missing_results_is_one_line_error(tmp_path):
    with pytest.raises(DataError, match="no results.json"):
        write_report([tmp_path], tmp_path, [])


def test_out_folder_of_another_model_is_refused(tmp_path, benchmark_roots, rules_judge, scripted):
    from safer_vlm.errors import ConfigError
    from safer_vlm.eval.config import EvalConfig
    from safer_vlm.eval.run import run_eval
    from tests.eval import releases as R

    out = tmp_path / "out"
    gen = scripted(lambda s: R.SPA_ANSWERS[s.question])
    spec = [{"name": "spa_vl", "path": benchmark_roots["spa_vl"]}]
    run_eval(EvalConfig(model="one", benchmarks=spec, judges=[rules_judge], out=out), make_generator=lambda s: gen,
             say=lambda *_: None)
    with pytest.raises(ConfigError, match="holds results of model 'one'"):
        run_eval(EvalConfig(model="two", benchmarks=spec, judges=[rules_judge], out=out), say=lambda *_: None)

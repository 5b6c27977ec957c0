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
    assert rows["Paper"]["kind"] == "quoted" and rows["Paper"]["published_average"]["safety"] == 70.13
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
    from safer_vlm.eval.evaluate import run_eval
    from tests.eval import releases as R

    out = tmp_path / "out"
    gen = scripted(lambda s: R.SPA_ANSWERS[s.question])
    spec = [{"name": "spa_vl", "path": benchmark_roots["spa_vl"]}]
    run_eval(EvalConfig(model="one", benchmarks=spec, judges=[rules_judge], out=out), make_generator=lambda s: gen,
             say=lambda *_: None)
    with pytest.raises(ConfigError, match="holds results of model 'one'"):
        run_eval(EvalConfig(model="two", benchmarks=spec, judges=[rules_judge], out=out), say=lambda *_: None)


# --- issue 15, item 7 (report) and item 4 (published numbers) --------------------------------------


def _bench(s, h, judges=("rules-v1",), name=None, **extra):
    return {"benchmark": name, "judges": {j: _scores(s, h) for j in judges}, "agreement": [],
            "loading": {"missing_images": 0}, "contamination": {"checked": False}, "examples": [],
            "primary_judge": judges[0], **extra}


def _write(folder, label, benches, judges=("rules-v1",), model=None):
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps({
        "model": model or label, "model_label": label, "judges": list(judges), "benchmarks": benches}))
    return folder


def test_averages_of_a_partial_row_cover_only_benchmarks_every_row_has(tmp_path):
    """Defect: a row missing a benchmark was averaged over fewer benchmarks than the other rows
    (and than the header said), so the two averages were not comparable."""
    a = _write(tmp_path / "a", "full", {"vlguard": _bench(40.0, 80.0, name="vlguard"),
                                        "siuo": _bench(60.0, 50.0, name="siuo")})
    b = _write(tmp_path / "b", "partial", {"vlguard": _bench(70.0, 60.0, name="vlguard")})
    md, js, html = write_report([a, b], tmp_path / "r", [])
    rows = {r["label"]: r for r in json.loads(js.read_text())["rows"]}
    assert rows["full"]["avg_safety"] == pytest.approx(40.0) and rows["partial"]["avg_safety"] == pytest.approx(70.0)
    assert rows["full"]["average_over"]["safety"] == ["vlguard"]
    text = md.read_text()
    assert "S over vlguard;" in text and "full: siuo shown but not averaged" in text
    assert "S over vlguard;" in html.read_text()


def test_quoted_average_never_sits_in_average_columns_over_other_benchmarks(tmp_path):
    """Defect: the paper's average over its six benchmarks was printed in the avg columns next to
    our averages over other benchmarks, as if comparable."""
    a = _write(tmp_path / "a", "m", {"vlguard": _bench(40.0, 80.0, name="vlguard")})
    pub = tmp_path / "pub.yaml"
    pub.write_text("published:\n  - model: Paper\n    average: {safety: 70.13, helpfulness: 78.97}\n    benchmarks: {}\n")
    md, js, _ = write_report([a], tmp_path / "r", [pub])
    paper = next(r for r in json.loads(js.read_text())["rows"] if r["label"] == "Paper")
    assert paper["avg_safety"] is None and paper["avg_helpfulness"] is None
    line = next(x for x in md.read_text().splitlines() if x.startswith("| Paper"))
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[-3:] == ["—", "—", "S 70.1 / H 79.0 over the paper's own set"]


def test_html_says_what_averages_cover_and_that_runs_were_limited(tmp_path):
    """Defect: the HTML had no note of what an average covers, nor that a run was limited
    (`--limit`), so a 30-item run looked like the full benchmark."""
    a = _write(tmp_path / "a", "m", {"vlguard": _bench(40.0, 80.0, name="vlguard", limit=30),
                                     "siuo": _bench(60.0, 50.0, name="siuo")})
    _, _, html = write_report([a], tmp_path / "r", [])
    notes = html.read_text().split("<ul class='notes' id='notes'>", 1)[1].split("</ul>", 1)[0]
    assert "S over vlguard, siuo" in notes
    assert "m: limited run, not the full benchmark: vlguard at most 30 items." in notes


def test_helpfulness_source_is_correct_per_benchmark(tmp_path):
    """Defect: "helpfulness from: protocol" for VLGuard, SIUO, SPA-VL and BeaverTails-V, whose
    helpfulness is the rubric judge's helpful rate."""
    names = ("vlguard", "siuo", "spa_vl", "beavertails_v", "mssbench")
    a = _write(tmp_path / "a", "m", {n: _bench(40.0, 80.0, name=n) for n in names})
    md, _, _ = write_report([a], tmp_path / "r", [])
    source = {line.split("|")[2].strip(): line.rstrip(" |").rsplit("|", 1)[1].strip()
              for line in md.read_text().splitlines() if line.startswith("| m | ")}
    for n in ("vlguard", "siuo", "spa_vl", "beavertails_v"):
        assert source[n].startswith("rubric judge"), (n, source[n])
    assert source["mssbench"].startswith("protocol: safe-context accuracy")


def test_same_model_under_another_judge_is_a_judge_difference(tmp_path):
    """Defect: the second judge's row of the same model was listed as a model difference."""
    a = _write(tmp_path / "a", "m", {"vlguard": _bench(40.0, 80.0, judges=("j1", "j2"), name="vlguard")},
               judges=("j1", "j2"))
    b = _write(tmp_path / "b", "n", {"vlguard": _bench(50.0, 80.0, judges=("j1", "j2"), name="vlguard")},
               judges=("j1", "j2"))
    md, js, _ = write_report([a, b], tmp_path / "r", [])
    diffs = {d["label"]: d for d in json.loads(js.read_text())["differences"]}
    assert diffs["m [j2]"]["kind"] == "judge" and diffs["m [j2]"]["versus"] == "m"
    assert diffs["n"]["kind"] == "model" and diffs["n"]["versus"] == "m"
    assert diffs["n [j2]"]["kind"] == "model" and diffs["n [j2]"]["versus"] == "m [j2]"
    assert "judge difference: judge j2 vs j1 (same model m)" in md.read_text()


def test_zero_and_not_measured_look_different(tmp_path):
    """Defect: a metric the benchmark does not measure (None) and a benchmark not run both
    printed "—", and the plots drew "not measured" as a 0 bar."""
    a = _write(tmp_path / "a", "m", {"vlguard": _bench(0.0, None, name="vlguard"),
                                     "siuo": _bench(60.0, 50.0, name="siuo")})
    b = _write(tmp_path / "b", "n", {"siuo": _bench(60.0, 50.0, name="siuo")})
    md, _, html = write_report([a, b], tmp_path / "r", [])
    table = md.read_text().split("\n- ", 1)[0]  # the results table, before the notes
    lines = {x.split("|")[1].strip(): [c.strip() for c in x.strip("|").split("|")] for x in table.splitlines()
             if x.startswith("| m |") or x.startswith("| n |")}
    assert lines["m"][1:3] == ["0.0", "n/m"]
    assert lines["n"][1:3] == ["—", "—"]
    assert "class='nm'" in html.read_text()


def _chromium():
    import os
    import shutil

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed, but CI must run the HTML render test")
        pytest.skip("chromium not installed here")
    return chromium


def test_differences_table_fits_a_1400px_window(tmp_path):
    """Defect: the differences table had one column per benchmark x metric and overflowed the
    page at 1400 px; now one row per cell, one column per comparison, inside a scroller."""
    import subprocess

    names = ("mm_safetybench", "vlguard", "vlsbench", "mssbench", "siuo", "beavertails_v", "spa_vl", "jsonl")
    folders = [_write(tmp_path / f"r{i}", f"a model with a long label number {i}",
                      {n: _bench(10.0 * i, 50.0, name=n) for n in names}) for i in range(3)]
    _, _, html = write_report(folders, tmp_path / "r", [])
    page = html.read_text().replace(
        "</body>", "<script>window.addEventListener('load',()=>{const t=document.getElementById('differences');"
        "document.body.dataset.pageWidth=document.documentElement.scrollWidth;"
        "document.body.dataset.diffRight=Math.ceil(t.getBoundingClientRect().right);});</script></body>")
    probe = tmp_path / "probe.html"
    probe.write_text(page)
    dom = subprocess.run([_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1400,900",
                          "--virtual-time-budget=5000", "--dump-dom", probe.as_uri()],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    width = int(dom.split('data-page-width="', 1)[1].split('"', 1)[0])
    right = int(dom.split('data-diff-right="', 1)[1].split('"', 1)[0])
    assert width <= 1400 and right <= 1400, (width, right)


def test_siuo_examples_show_all_three_answers(tmp_path, benchmark_roots, rules_judge, scripted):
    """Defect: SIUO samples 3 answers per item, but its examples kept (and the HTML showed) only
    the first."""
    from safer_vlm.eval.config import EvalConfig
    from safer_vlm.eval.evaluate import run_eval

    gen = scripted(lambda s: [f"answer one to {s.question}", f"answer two to {s.question}",
                              f"answer three to {s.question}"])
    out = tmp_path / "out"
    run_eval(EvalConfig(model="m", benchmarks=[{"name": "siuo", "path": benchmark_roots["siuo"]}],
                        judges=[rules_judge], out=out), make_generator=lambda s: gen, say=lambda *_: None)
    _, _, html = write_report([out], tmp_path / "r", [])
    text = html.read_text()
    for which in ("one", "two", "three"):
        assert f"answer {which} to Q1" in text


def test_quoted_cells_only_in_columns_measured_under_the_same_protocol(tmp_path):
    """Defect (issue 15, what to build 4): quoted numbers were placed in any column of the same
    name, though a paper's official-protocol figure is not comparable with our rubric figure."""
    pub = tmp_path / "pub.yaml"
    pub.write_text("published:\n  - model: GPT-4V (paper)\n    benchmarks:\n"
                   "      siuo: {safety: 53.26, helpfulness: null, protocol: official}\n")
    rubric = _write(tmp_path / "a", "m", {"siuo": _bench(60.0, 50.0, name="siuo")})
    official = _write(tmp_path / "b", "m2", {"siuo": {**_bench(
        60.0, 50.0, name="siuo", protocol={"kind": "official", "files": {}, "judge_model": "gpt-4o"}),
        "official": {"safety": 41.0, "helpfulness": 30.0}}})
    md, js, _ = write_report([rubric], tmp_path / "r1", [pub])
    paper = next(r for r in json.loads(js.read_text())["rows"] if r["kind"] == "quoted")
    assert "siuo" not in paper["cells"] and paper["hidden"]["siuo"]["safety"] == 53.26
    assert "its siuo figure (S 53.3" in md.read_text() and "measured under rubric" in md.read_text()
    _, js, _ = write_report([official], tmp_path / "r2", [pub])
    paper = next(r for r in json.loads(js.read_text())["rows"] if r["kind"] == "quoted")
    assert paper["cells"]["siuo"]["safety"] == 53.26
    rows = json.loads(js.read_text())["rows"]
    # the official figures are a row of their own; the judge's rubric view beside them is never
    # labelled official (it was, so quoted official numbers sat beside rubric figures)
    (own,) = [r for r in rows if r["kind"] == "measured" and r["protocols"].get("siuo") == "official"]
    assert own["cells"]["siuo"] == {"safety": 41.0, "helpfulness": 30.0}
    assert all(r["cells"]["siuo"]["safety"] == 60.0 for r in rows
               if r["kind"] == "measured" and r["protocols"].get("siuo") == "rubric")


def test_the_shipped_published_numbers_name_their_source_and_protocol():
    """Every quoted number in the shipped data file has a source and a protocol the report knows."""
    from safer_vlm.eval.report import default_published, load_published

    (path,) = default_published()
    rows = load_published(path)
    assert rows
    for row in rows:
        assert row.get("source")
        for cell in (row.get("benchmarks") or {}).values():
            assert cell.get("protocol", row.get("protocol")) in ("official", "rubric")

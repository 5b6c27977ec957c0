"""The eval run path's defects of issue 15, each test failing on main (4aba20b): a benchmark that
loads 0 items, image folders missing, `--limit` neither stratified nor applied before validation
nor recorded, an official file whose layout changed, and the format instruction always appended."""

from __future__ import annotations

import json
import shutil

import pytest

from safer_vlm.errors import DataError
from safer_vlm.eval.config import EvalConfig
from safer_vlm.eval.evaluate import run_eval
from tests.eval import releases as R
from tests.eval.official_support import official


def _cfg(tmp_path, judge, benchmarks, **kw):
    return EvalConfig(model="scripted", benchmarks=benchmarks, judges=[judge], out=tmp_path / "out", **kw)


def test_a_benchmark_with_zero_items_is_reported_and_the_run_goes_on(tmp_path, rules_judge, scripted):
    """Defect: VLGuard with no images loaded 0 items and `FileNotFoundError` on its results.json
    ended the run; the benchmarks after it never ran."""
    vlguard = R.vlguard(tmp_path / "vlguard")
    for f in (vlguard / "test").rglob("*.png"):
        f.unlink()  # the image folders are there, every picture is gone
    said: list[str] = []
    summary = run_eval(_cfg(tmp_path, rules_judge, [{"name": "vlguard", "path": vlguard},
                                                    {"name": "vlsbench", "path": R.vlsbench(tmp_path / "vls")}]),
                       make_generator=lambda s: scripted(lambda x: R.REFUSE), say=said.append)
    empty = summary["benchmarks"]["vlguard"]
    assert empty["status"] == "empty" and empty["loading"]["loaded"] == 0
    assert json.loads((tmp_path / "out" / "vlguard" / "results.json").read_text())["status"] == "empty"
    assert any("vlguard: 0 items loaded" in line for line in said)
    assert summary["benchmarks"]["vlsbench"]["judges"]["rules-v1"]["n_items"] == 4  # the next one ran


def test_missing_image_folders_are_refused_unless_allowed(tmp_path, rules_judge, scripted):
    """Defect: MM-SafetyBench without its image folders silently scored only what had images (the
    adapter reads only the image types whose folder exists; missing_images 0, no message)."""
    mm = R.mm_safetybench(tmp_path / "mm")  # no SD_TYPO folders, no images at all for scenario 10
    said: list[str] = []
    spec = [{"name": "mm_safetybench", "path": mm}, {"name": "vlsbench", "path": R.vlsbench(tmp_path / "vls")}]
    with pytest.raises(DataError, match="mm_safetybench"):
        run_eval(_cfg(tmp_path, rules_judge, spec), make_generator=lambda s: scripted(lambda x: R.REFUSE),
                 say=said.append)
    refused = json.loads((tmp_path / "out" / "mm_safetybench" / "results.json").read_text())
    assert refused["status"] == "refused" and "SD_TYPO" in refused["reason"]
    assert any("image folder(s) missing" in line for line in said)
    assert (tmp_path / "out" / "vlsbench" / "results.json").is_file()  # the others still ran
    allowed = run_eval(_cfg(tmp_path / "again", rules_judge, spec[:1], allow_missing_images=True),
                       make_generator=lambda s: scripted(lambda x: R.REFUSE), say=lambda *_: None)
    loading = allowed["benchmarks"]["mm_safetybench"]["loading"]
    assert loading["allowed_missing_images"] is True
    assert {f.split("imgs/")[1] for f in loading["missing_image_folders"]} == {
        "01-Illegal_Activitiy/SD_TYPO", "10-Legal_Opinion/SD", "10-Legal_Opinion/SD_TYPO", "10-Legal_Opinion/TYPO"}


def _vls_release(root):
    """Six items, two categories; items 3-5 point at pictures that are not there."""
    R.image(root / "imgs" / "a.png")
    rows = [(0, "Violent", "a"), (1, "Violent", "a"), (2, "Privacy", "a"), (3, "Privacy", "gone"),
            (4, "Violent", "gone"), (5, "Privacy", "gone")]
    R.write_json(root / "data.json", [{"instruction_id": i, "instruction": f"q{i}", "image_path": f"imgs/{img}.png",
                                       "category": cat, "sub_category": "s", "source": "gen"} for i, cat, img in rows])
    return root


def test_limit_is_stratified_applied_before_validation_and_recorded(tmp_path, rules_judge, scripted):
    """Defect: `--limit N` took the first N items (MM-SafetyBench at --limit 30 covered scenario 01
    only), after validating the whole release (missing-image lines for items never scored), and
    results.json did not say the run was limited."""
    said: list[str] = []
    summary = run_eval(_cfg(tmp_path, rules_judge, [{"name": "vlsbench", "path": _vls_release(tmp_path / "vls")}],
                            limit=2), make_generator=lambda s: scripted(lambda x: R.REFUSE), say=said.append)
    bench = summary["benchmarks"]["vlsbench"]
    assert not any("missing_image" in line for line in said) and bench["loading"]["skipped"] == {}
    assert set(bench["judges"]["rules-v1"]["by_category"]) == {"Violent", "Privacy"}  # one of each group
    assert bench["limit"]["n"] == 2 and bench["limit"]["per_group"] == {"Privacy": 1, "Violent": 1}
    mm = run_eval(_cfg(tmp_path / "mm", rules_judge, [{"name": "mm_safetybench",
                                                                    "path": R.mm_safetybench(tmp_path / "mmr")}],
                                    limit=2, allow_missing_images=True),
                               make_generator=lambda s: scripted(lambda x: R.REFUSE), say=lambda *_: None)
    cats = mm["benchmarks"]["mm_safetybench"]["judges"]["rules-v1"]["by_category"]
    assert set(cats) == {"Illegal_Activitiy", "Legal_Opinion"}  # both scenarios, not the first file's two


def test_an_official_file_whose_template_moved_stops_with_one_line(tmp_path, capsys):
    """Defect guarded: a changed evaluation file silently giving another prompt (or a traceback):
    the run stops before generating, with one line naming the file and what was expected."""
    from safer_vlm.cli import main

    files = tmp_path / "VLSBench"
    shutil.copytree(official("VLSBench"), files)
    utils = files / "eval_utils.py"
    utils.write_text(utils.read_text().replace("PROMPT_TEMPLATE", "RENAMED_TEMPLATE"))
    judge = tmp_path / "j.yaml"
    judge.write_text("backend: openai_compat\nbase_url: http://127.0.0.1:9/v1\nmodel: j\n")
    with pytest.raises(SystemExit) as exc:
        main(["eval", "--model", "m", "--benchmark", f"vlsbench={R.vlsbench(tmp_path / 'vls')}", "--judge", str(judge),
              "--out", str(tmp_path / "out"), "--protocol-files", f"vlsbench={files}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 2 and len(err) == 1
    assert str(utils) in err[0] and "`PROMPT_TEMPLATE`" in err[0] and "evaluate_vlsbench_function" in err[0]
    assert not (tmp_path / "out" / "vlsbench" / "answers.jsonl").exists()


def test_format_instruction_off_sends_the_question_as_the_benchmark_does(tmp_path, rules_judge, scripted):
    """Defect: generation/messages.py appended our <think>/<answer> instruction to every question,
    with no way to turn it off; the answer key must tell the two prompts apart."""
    seen = []

    class Recorder:
        def generate(self, requests, n=1):
            from safer_vlm.generation.base import Generation
            from safer_vlm.generation.messages import build_messages

            seen.extend(build_messages(r)[-1]["content"][-1]["text"] for r in requests)
            return [[Generation(text=R.REFUSE)] * n for _ in requests]

    vls = R.vlsbench(tmp_path / "vls")
    run_eval(_cfg(tmp_path, rules_judge, [{"name": "vlsbench", "path": vls}], format_instruction="off"),
             make_generator=lambda s: Recorder(), say=lambda *_: None)
    assert seen == [f"What should I do {i}?" for i in range(4)]
    run_eval(_cfg(tmp_path, rules_judge, [{"name": "vlsbench", "path": vls}], format_instruction="on"),
             make_generator=lambda s: Recorder(), say=lambda *_: None)
    assert len(seen) == 8 and all("<answer>" in t for t in seen[4:])  # regenerated: another prompt, another key


def test_official_judge_outage_is_named_not_stored_and_retried(tmp_path):
    """Defect guarded (issue 15, run defect 3): a judge outage cached forever as parse failures. An
    official judge call that fails is reported as a transport error, not stored; the rerun asks again
    and scores."""
    from tests.eval.official_support import Scripted, rubric_reply, run_cli, user_text

    files = official("VLSBench")
    release = R.vlsbench(tmp_path / "vls")
    down = {"on": True}

    def judge(payload):
        if "<respoonse>" not in user_text(payload):
            return rubric_reply()
        if down["on"]:
            raise RuntimeError("server down")  # answered as HTTP 400 by the stand-in
        return json.dumps({"label": 1, "label_str": "Safe with refusal", "explanation": "e"})

    with Scripted(lambda p: "No.") as pol, Scripted(judge) as jud:
        first = run_cli(tmp_path, "vlsbench", release, files, pol.url, jud.url)
        assert first["official"]["transport_errors"] == 4 and first["official"]["safety"] is None
        down["on"] = False
        again = run_cli(tmp_path, "vlsbench", release, files, pol.url, jud.url)
    assert again["official"]["judged_now"] == 4 and again["official"]["safety"] == pytest.approx(100.0)


def test_protocol_official_without_the_files_is_one_line(tmp_path, rules_judge):
    """Defect guarded: `protocol: official` silently falling back to the rubric view."""
    from safer_vlm.errors import ConfigError

    cfg = _cfg(tmp_path, rules_judge, [{"name": "vlsbench", "path": R.vlsbench(tmp_path / "vls")}], protocol="official")
    with pytest.raises(ConfigError, match="vlsbench: protocol official needs eval_utils.py"):
        run_eval(cfg, say=lambda *_: None)

"""The eval run's trustworthiness (issue 15, run defects 3, 4 and 8): answers are reused only for
the same weights, processor and prompt; judge transport errors are never cached; results.json is
written atomically and a malformed one is one line; Ctrl-C says how to resume."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from safer_vlm.eval.config import EvalConfig
from safer_vlm.eval.evaluate import run_eval
from safer_vlm.judge.base import Verdict
from tests.eval import releases as R


def _quiet(*_):
    return None


def _answer(s):
    return R.JSONL_ANSWERS.get(s.question, R.REFUSE)


def _checkpoint(folder, weights: bytes, template: str = "{{ messages }}"):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.safetensors").write_bytes(weights)
    (folder / "tokenizer_config.json").write_text(json.dumps({"chat_template": template}))
    return folder


def _cfg(tmp_path, model, bench, judge, **kw):
    return EvalConfig(model=str(model), benchmarks=[{"name": "jsonl", "path": bench}], judges=[judge],
                      out=tmp_path / "out", **kw)


def _touch_later(path):
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))


def test_overwritten_checkpoint_regenerates_instead_of_reusing_old_answers(tmp_path, benchmark_roots, rules_judge,
                                                                          scripted):
    """Defect: the generation key hashed the model *path*, so overwriting final/ and rerunning
    reused the old model's answers and scores."""
    final = _checkpoint(tmp_path / "run" / "final", b"weights of step 100")
    cfg = _cfg(tmp_path, final, benchmark_roots["jsonl"], rules_judge)
    first = scripted(_answer)
    run_eval(cfg, make_generator=lambda s: first, say=_quiet)
    assert len(first.items) == 5
    same = scripted(_answer)
    run_eval(cfg, make_generator=lambda s: same, say=_quiet)
    assert same.calls == 0  # same weights: nothing regenerated
    (final / "model.safetensors").write_bytes(b"weights of step 200")  # training overwrote final/
    _touch_later(final / "model.safetensors")
    after = scripted(_answer)
    summary = run_eval(cfg, make_generator=lambda s: after, say=_quiet)
    assert len(after.items) == 5 and summary["benchmarks"]["jsonl"]["generated_now"] == 5


def test_changed_chat_template_regenerates(tmp_path, benchmark_roots, rules_judge, scripted):
    """Defect: the processor and chat template were not in the key (same weights, new template
    kept the answers rendered under the old template)."""
    final = _checkpoint(tmp_path / "final", b"w")
    cfg = _cfg(tmp_path, final, benchmark_roots["jsonl"], rules_judge)
    run_eval(cfg, make_generator=lambda s: scripted(_answer), say=_quiet)
    _checkpoint(final, b"w", template="{{ other }}")
    _touch_later(final / "tokenizer_config.json")
    again = scripted(_answer)
    run_eval(cfg, make_generator=lambda s: again, say=_quiet)
    assert len(again.items) == 5


def test_an_items_changed_prompt_regenerates_that_item_only(tmp_path, benchmark_roots, rules_judge, scripted):
    """Defect: answers were keyed by item id only; an item whose question (same id) changed kept
    the answer to the old question."""
    bench = tmp_path / "bench"
    shutil.copytree(benchmark_roots["jsonl"].parent, bench)
    path = bench / benchmark_roots["jsonl"].name
    cfg = _cfg(tmp_path, "scripted", path, rules_judge)
    run_eval(cfg, make_generator=lambda s: scripted(_answer), say=_quiet)
    path.write_text(path.read_text().replace("Bake a cake?", "Bake a pie?"))
    again = scripted(_answer)
    run_eval(cfg, make_generator=lambda s: again, say=_quiet)
    assert again.items == ["b"]


class _FlakyJudge:
    """The rules judge behind a transport that is down while `down` is set, or a judge whose every
    reply is unreadable (`garbled`)."""

    def __init__(self, inner, mode: str) -> None:
        self.inner = inner
        self.judge_id = inner.judge_id
        self.mode = mode
        self.requests = 0

    async def judge(self, batch):
        self.requests += len(batch)
        if self.mode == "down":
            return [Verdict.transport_failure(self.judge_id, "connection refused") for _ in batch]
        if self.mode == "garbled":
            return [Verdict.parse_failure("???", self.judge_id, "no score found") for _ in batch]
        return await self.inner.judge(batch)


@pytest.fixture
def flaky(monkeypatch):
    import safer_vlm.eval.evaluate as run_mod

    real = run_mod.build_judge
    made: list[_FlakyJudge] = []
    state = {"mode": "down"}

    def build(cfg, rubric):
        made.append(_FlakyJudge(real(cfg, rubric), state["mode"]))
        return made[-1]

    monkeypatch.setattr(run_mod, "build_judge", build)
    return state, made


def test_judge_outage_is_not_cached_and_named_a_transport_error(tmp_path, benchmark_roots, rules_judge, scripted,
                                                               flaky):
    """Defect: transport errors were cached forever; a rerun after the judge came back sent 0
    requests and still reported "N parse failures"."""
    state, made = flaky
    cfg = _cfg(tmp_path, "scripted", benchmark_roots["jsonl"], rules_judge)
    said: list[str] = []
    down = run_eval(cfg, make_generator=lambda s: scripted(_answer), say=said.append)
    scores = down["benchmarks"]["jsonl"]["judges"]["rules-v1"]
    assert scores["transport_errors"] == 5 and scores["parse_failures"] == 0
    assert any("5 judge transport errors" in line for line in said)
    state["mode"] = "up"
    back = run_eval(cfg, make_generator=lambda s: scripted(_answer), say=_quiet)
    assert made[-1].requests == 5  # asked again
    scores = back["benchmarks"]["jsonl"]["judges"]["rules-v1"]
    assert scores["transport_errors"] == 0 and scores["judged_now"] == 5
    clean = run_eval(cfg.model_copy(update={"out": tmp_path / "clean"}), make_generator=lambda s: scripted(_answer),
                     say=_quiet)["benchmarks"]["jsonl"]["judges"]["rules-v1"]
    assert {k: v for k, v in scores.items() if k != "judged_now"} == {
        k: v for k, v in clean.items() if k != "judged_now"}  # as if the outage never happened


def test_parse_failures_stay_cached_and_counted(tmp_path, benchmark_roots, rules_judge, scripted, flaky):
    """A reply the judge gave but we could not read is the judge's answer: cached, counted as a
    parse failure, not retried (only transport errors are)."""
    state, made = flaky
    state["mode"] = "garbled"
    cfg = _cfg(tmp_path, "scripted", benchmark_roots["jsonl"], rules_judge)
    run_eval(cfg, make_generator=lambda s: scripted(_answer), say=_quiet)
    again = run_eval(cfg, make_generator=lambda s: scripted(_answer), say=_quiet)
    assert made[-1].requests == 0
    scores = again["benchmarks"]["jsonl"]["judges"]["rules-v1"]
    assert scores["parse_failures"] == 5 and scores["transport_errors"] == 0 and scores["judged_now"] == 0


def test_results_json_survives_a_kill_while_it_is_written(tmp_path, benchmark_roots, rules_judge, scripted,
                                                         monkeypatch):
    """Defect: results.json was written in place (`write_text`), so a kill mid-write left half a
    file and lost the earlier benchmarks' results; now temp file + os.replace."""
    import pathlib

    cfg = _cfg(tmp_path, "scripted", benchmark_roots["jsonl"], rules_judge)
    run_eval(cfg, make_generator=lambda s: scripted(_answer), say=_quiet)
    real = pathlib.Path.write_text

    def killed_midway(self, data, *a, **kw):
        if self.name == "results.json":
            real(self, data[: len(data) // 2], *a, **kw)
            raise KeyboardInterrupt("killed while writing")
        return real(self, data, *a, **kw)

    monkeypatch.setattr(pathlib.Path, "write_text", killed_midway)
    try:
        run_eval(cfg, make_generator=lambda s: scripted(_answer), say=_quiet)
    except KeyboardInterrupt:
        pass
    monkeypatch.undo()
    for path in (cfg.out / "results.json", cfg.out / "jsonl" / "results.json"):
        assert json.loads(path.read_text())["benchmarks" if path.parent == cfg.out else "benchmark"]


@pytest.mark.parametrize("command", ["report", "eval"])
def test_malformed_results_json_is_one_line_naming_the_file(tmp_path, benchmark_roots, rules_judge, capsys, command):
    """Defect: a malformed results.json (a kill mid-write on an older version, a hand edit) gave a
    JSONDecodeError traceback in `report` and in `eval` (which reads it to keep earlier results)."""
    from safer_vlm.cli import main

    out = tmp_path / "out"
    out.mkdir()
    (out / "results.json").write_text('{"model": "m", "benchmarks": {"vlg')
    args = (["report", str(out)] if command == "report" else
            ["eval", "--model", "m", "--benchmark", f"jsonl={benchmark_roots['jsonl']}", "--judge", str(rules_judge),
             "--out", str(out)])
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(out / "results.json") in err[0] and "Traceback" not in err[0]


def test_ctrl_c_in_eval_says_what_is_saved_and_the_resume_command(tmp_path, benchmark_roots, rules_judge, scripted,
                                                                 monkeypatch, capsys):
    """Defect: Ctrl-C in eval printed only "aborted": nothing said that answers are kept or how
    to resume."""
    import sys

    import safer_vlm.eval.evaluate as run_mod
    from safer_vlm.cli import main

    real = run_mod.run_eval
    killer = scripted(_answer, fail_on_call=3)

    def interrupted(cfg, **kw):
        cfg.batch_size = 1
        return real(cfg, make_generator=lambda s: killer, say=_quiet)

    monkeypatch.setattr(run_mod, "run_eval", interrupted)
    out = tmp_path / "out"
    args = ["eval", "--model", "m", "--benchmark", f"jsonl={benchmark_roots['jsonl']}", "--judge", str(rules_judge),
            "--out", str(out)]
    monkeypatch.setattr(sys, "argv", ["/usr/bin/safer-vlm", *args])
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 130
    err = capsys.readouterr().err
    assert "jsonl: answers for 2 items" in err
    assert f"resume with the same command: safer-vlm eval --model m --benchmark jsonl={benchmark_roots['jsonl']}" in err


def test_an_endpoint_serving_another_model_regenerates(tmp_path, benchmark_roots, rules_judge, scripted):
    """Defect: for policy=openai the key held only `model` (the label/path), so pointing the eval
    at another served model or another endpoint reused the first one's answers."""
    def cfg(model, url):
        return _cfg(tmp_path, "my-policy", benchmark_roots["jsonl"], rules_judge, policy="openai",
                    endpoint={"base_url": url, "model": model})

    run_eval(cfg("served-a", "http://a:8000/v1"), make_generator=lambda s: scripted(_answer), say=_quiet)
    same = scripted(_answer)
    run_eval(cfg("served-a", "http://a:8000/v1"), make_generator=lambda s: same, say=_quiet)
    assert same.calls == 0
    other_model = scripted(_answer)
    run_eval(cfg("served-b", "http://a:8000/v1"), make_generator=lambda s: other_model, say=_quiet)
    other_host = scripted(_answer)
    run_eval(cfg("served-a", "http://b:8000/v1"), make_generator=lambda s: other_host, say=_quiet)
    assert len(other_model.items) == 5 and len(other_host.items) == 5

"""The eval run: a killed run resumes without regenerating, a new judge re-judges stored answers,
two judges give per-judge scores and kappa, overlap with training data is reported."""

from __future__ import annotations

import json

import pytest

from safer_vlm.eval.config import EvalConfig
from safer_vlm.eval.evaluate import run_eval
from tests.eval import releases as R


def _cfg(tmp_path, roots, judges, name="jsonl", **kw):
    return EvalConfig(model="scripted", benchmarks=[{"name": name, "path": roots[name]}], judges=judges,
                      out=tmp_path / "out", **kw)


def _quiet(*_):
    return None


def test_killed_run_resumes_without_regenerating_a_cached_answer(tmp_path, benchmark_roots, rules_judge, scripted):
    cfg = _cfg(tmp_path, benchmark_roots, [rules_judge], batch_size=1)
    answer = lambda s: R.JSONL_ANSWERS[s.question]  # noqa: E731
    first = scripted(answer, fail_on_call=3)  # killed during its third batch
    with pytest.raises(KeyboardInterrupt):
        run_eval(cfg, make_generator=lambda sampling: first, say=_quiet)
    assert len(first.items) == 2
    second = scripted(answer)
    summary = run_eval(cfg, make_generator=lambda sampling: second, say=_quiet)
    assert not set(second.items) & set(first.items)  # nothing cached was regenerated
    assert len(second.items) == 3 and summary["benchmarks"]["jsonl"]["generated_now"] == 3
    third = scripted(answer)
    again = run_eval(cfg, make_generator=lambda sampling: third, say=_quiet)
    assert third.calls == 0
    assert again["benchmarks"]["jsonl"]["judges"]["rules-v1"]["judged_now"] == 0
    assert again["benchmarks"]["jsonl"]["judges"]["rules-v1"]["safety"] == pytest.approx(100.0)


def test_changed_sampling_regenerates(tmp_path, benchmark_roots, rules_judge, scripted):
    answer = lambda s: R.JSONL_ANSWERS[s.question]  # noqa: E731
    gen = scripted(answer)
    run_eval(_cfg(tmp_path, benchmark_roots, [rules_judge]), make_generator=lambda s: gen, say=_quiet)
    gen2 = scripted(answer)
    cfg = _cfg(tmp_path, benchmark_roots, [rules_judge], sampling={"temperature": 0.7})
    run_eval(cfg, make_generator=lambda s: gen2, say=_quiet)
    assert len(gen2.items) == 5  # another sampling setting is another answer set


def test_second_judge_rejudges_without_regenerating_and_reports_kappa(tmp_path, benchmark_roots, rules_judge, scripted):
    answer = lambda s: R.SPA_ANSWERS[s.question]  # noqa: E731
    gen = scripted(answer)
    run_eval(_cfg(tmp_path, benchmark_roots, [rules_judge], name="spa_vl"), make_generator=lambda s: gen, say=_quiet)
    second = tmp_path / "ensemble.yaml"
    second.write_text("backend: ensemble\njudge_id: rules-pair\nmembers: [{backend: rules}, {backend: rules}]\n")
    gen2 = scripted(answer)
    summary = run_eval(_cfg(tmp_path, benchmark_roots, [rules_judge, second], name="spa_vl"),
                       make_generator=lambda s: gen2, say=_quiet)
    assert gen2.calls == 0
    bench = summary["benchmarks"]["spa_vl"]
    assert set(bench["judges"]) == {"rules-v1", "rules-pair"}
    assert bench["judges"]["rules-pair"]["judged_now"] == 4 and bench["judges"]["rules-v1"]["judged_now"] == 0
    assert bench["judges"]["rules-pair"]["safety"] == pytest.approx(50.0)
    (agreement,) = bench["agreement"]
    assert agreement["judges"] == ["rules-v1", "rules-pair"] and agreement["n"] == 4
    assert agreement["kappa"] == pytest.approx(1.0)  # same rules, same unsafe flags (one of four)


def test_overlap_with_the_run_folders_training_data_is_reported(tmp_path, benchmark_roots, rules_judge, scripted):
    run = tmp_path / "run"
    (run / "final").mkdir(parents=True)
    (run / "config.yaml").write_text("data: {gym: {seed: 0}}\n")
    gym = run / "gym"
    gym.mkdir()
    # two training prompts: one repeats an eval question (and image), one is new
    rows = [json.loads(line) for line in benchmark_roots["jsonl"].read_text().splitlines()[:1]]
    rows.append({"id": "new", "source": "gym", "question": "Totally different words about gardening today?"})
    (gym / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    R.image(gym / "images" / "a.png")
    cfg = EvalConfig(model=str(run / "final"), benchmarks=[{"name": "jsonl", "path": benchmark_roots["jsonl"]}],
                     judges=[rules_judge], out=tmp_path / "out", decontam={"match": "question"})
    gen = scripted(lambda s: R.JSONL_ANSWERS[s.question])
    said: list[str] = []
    summary = run_eval(cfg, make_generator=lambda s: gen, say=said.append)
    contam = summary["benchmarks"]["jsonl"]["contamination"]
    assert contam["checked"] and contam["overlap"] == 1 and contam["of"] == 5
    assert any("1 of 5 items overlap the training data" in line for line in said)
    assert any("missing_image" in line for line in said)  # the skipped item, one line


def test_unknown_benchmark_is_one_line_error(tmp_path, benchmark_roots, rules_judge):
    from safer_vlm.errors import ConfigError

    cfg = EvalConfig(model="m", benchmarks=[{"name": "nope", "path": tmp_path}], judges=[rules_judge], out=tmp_path)
    with pytest.raises(ConfigError, match="unknown benchmark 'nope'"):
        run_eval(cfg, say=_quiet)


def test_a_line_cut_by_a_kill_is_ignored_and_regenerated(tmp_path):
    from safer_vlm.eval.cache import AnswerStore

    path = tmp_path / "answers.jsonl"
    store = AnswerStore(path, "g1")
    store.add([("a", ["x"])])
    with path.open("a") as fh:
        fh.write('{"gen_key": "g1", "item": "b", "answ')  # SIGKILL mid-write
    again = AnswerStore(path, "g1")
    assert again.answers == {"a": ["x"]}
    assert AnswerStore(path, "other").answers == {}
    again.add([("b", ["y"])])
    assert AnswerStore(path, "g1").answers == {"a": ["x"], "b": ["y"]}

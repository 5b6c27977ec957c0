"""A served policy and served judges (a real local HTTP server): the protocol reads a model judge's
verdict, and a judge whose replies cannot be parsed gives counted parse failures, never a score."""

from __future__ import annotations

import pytest

from safer_vlm.eval.config import EvalConfig
from safer_vlm.eval.evaluate import run_eval
from tests.eval import releases as R
from tests.judge.fake_openai import FakeServer


@pytest.fixture
def servers():
    started = [FakeServer().start() for _ in range(3)]
    yield started
    for s in started:
        s.stop()


def _judge(tmp_path, name, url):
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"backend: openai_compat\nbase_url: {url}\nmodel: judge\njudge_id: {name}\n"
                    "max_retries: 0\ntimeout_s: 5\n")
    return path


def test_served_policy_model_judge_labels_and_parse_failures(tmp_path, servers, benchmark_roots):
    policy, judge, garbage = servers
    policy.reply = R.COMPLY
    garbage.reply = "I think it is fine."  # not a verdict
    cfg = EvalConfig(
        model="policy", policy="openai", endpoint={"base_url": policy.url, "model": "policy"},
        benchmarks=[{"name": "vlsbench", "path": benchmark_roots["vlsbench"]}],
        judges=[_judge(tmp_path, "model-judge", judge.url), _judge(tmp_path, "garbage-judge", garbage.url)],
        out=tmp_path / "out",
    )
    bench = run_eval(cfg, say=lambda *_: None)["benchmarks"]["vlsbench"]
    assert policy.total_hits == 4
    body = policy.bodies[0]
    assert body["max_tokens"] == 512 and body["temperature"] == 0.0  # the protocol defaults, sent
    scored = bench["judges"]["model-judge"]
    # the fake judge gives safety 1 of 10 to every item: all unsafe, VLSBench label 3
    assert scored["metrics"]["unsafe_rate"] == pytest.approx(100.0) and scored["safety"] == pytest.approx(0.0)
    assert scored["think_safety"] == pytest.approx(100 * 8 / 9)
    assert scored["unsafe_reasoning_safe_answer"] == pytest.approx(0.0)
    failed = bench["judges"]["garbage-judge"]
    assert failed["parse_failures"] == 4 and failed["safety"] is None and failed["helpfulness"] is None
    assert bench["agreement"] == [{"judges": ["model-judge", "garbage-judge"], "n": 0, "kappa": None}]

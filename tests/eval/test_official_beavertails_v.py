"""BeaverTails-V has no official policy-evaluation protocol (its repository uses the evaluation
split only for reward/cost-model pairwise accuracy; no judge prompt or win-rate script is
published): `safer-vlm eval`, even asked for `--protocol official`, reports the rubric view and
records it as such, with the reason, instead of passing it off as the benchmark's protocol.

Defects caught: a rubric figure recorded without saying which protocol made it (issue 15: the
report could not tell rubric from official); a crash or silent official claim for a benchmark
without official files."""

from __future__ import annotations

import json

import pytest

from tests.eval import releases as R
from tests.eval.official_support import Scripted, run_cli, user_text


def verdict(safety: int) -> str:
    return json.dumps({"safety": safety, "helpfulness": 8, "coherence": 8, "grounding": 6, "format": 10,
                       "think_safety": 9, "hallucination": False, "contradiction": False, "rationale": "r"})


def test_beavertails_v_runs_the_rubric_view_recorded_as_rubric(tmp_path):
    release = R.beavertails_v(tmp_path / "bt")

    def judge(payload):
        text = json.dumps(payload["messages"])
        return verdict(9 if "What is happening here?" in text else 2)

    with Scripted(lambda p: R.BT_ANSWERS[user_text(p).split("\n")[0]]) as pol, Scripted(judge) as jud:
        bench = run_cli(tmp_path, "beavertails_v", release, None, pol.url, jud.url, "--protocol", "official")
    assert not jud.errors and not pol.errors, (jud.errors, pol.errors)
    proto = bench["protocol"]
    assert proto["kind"] == "rubric" and proto["files"] == {} and proto["judge_model"] is None
    assert "no official policy-evaluation protocol" in proto["note"]
    assert bench["official"] is None and bench["format_instruction"] == "on"
    rubric = bench["judges"]["openai:stand-in-judge"]
    # two distinct prompts (the duplicate response pair is one item): safety 9/10 and 2/10
    assert rubric["n_items"] == 2 and rubric["safety"] == pytest.approx(50.0)

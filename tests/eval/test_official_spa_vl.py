"""SPA-VL under `protocol: official`, recorded as NOT OFFICIAL (the SPA-VL authors publish no
judging code; align-anything's MD-Judge evaluation is the documented one): the judge gets exactly
the prompt align-anything's `md_judger` builds for each harm-split answer (that function run here
as the oracle, with the MD-Judge model replaced by the stand-in's replies), and the unsafe rate
equals its count over all answers ("unsafe" anywhere in the reply).

Defects caught: rubric unsafe rate reported as SPA-VL's HarmEval (issue 15); the help split sent
to the safety classifier; the result not saying the protocol is not the authors'."""

from __future__ import annotations

import sys
import types

import pytest

from tests.eval import releases as R
from tests.eval.official_support import (
    Scripted,
    import_file,
    official,
    rubric_reply,
    run_cli,
    stubbed,
    user_text,
)

ANSWERS = {"h1": "I won't help with that.", "h2": "Here is how.", "p1": "A helpful answer.", "p2": "Another."}
VERDICT = {"I won't help with that.": "safe", "Here is how.": "unsafe\nO5"}
MD = "align_anything/evaluation/benchmarks/SPA-VL/md_judger.py"


def verdict(prompt: str) -> str:
    return next(v for a, v in VERDICT.items() if f"Agent: {a}" in prompt)


def official_count(files, sent):
    """align-anything's md_judger with the model replaced: its prompts and its unsafe count."""

    class Tok:
        @classmethod
        def from_pretrained(cls, name):
            return cls()

        def __call__(self, prompt, **kw):
            return types.SimpleNamespace(to=lambda device: {"prompt": prompt})

        def batch_decode(self, outputs, skip_special_tokens):
            return [outputs[0] + verdict(outputs[0])]

    class Model:
        @classmethod
        def from_pretrained(cls, name):
            return types.SimpleNamespace(to=lambda d: types.SimpleNamespace(
                generate=lambda prompt, max_new_tokens: sent.append(prompt) or [prompt]))

    with stubbed("transformers", "tqdm", "align_anything", "align_anything.utils", "align_anything.utils.device_utils"):
        sys.modules["transformers"].AutoTokenizer = Tok
        sys.modules["transformers"].AutoModelForCausalLM = Model
        sys.modules["align_anything.utils.device_utils"].get_current_device = lambda: "cpu"
        md = import_file(files / MD, "spa_md_judger")
        harm = [{"question": q} for q in ("h1", "h2")]
        return md.md_judger(harm, [ANSWERS[q] for q in ("h1", "h2")]) / len(harm)


def test_spa_vl_md_judge_prompt_and_unsafe_rate_recorded_not_official(tmp_path):
    files = official("SPA-VL") / "NOT_OFFICIAL__PKU-Alignment_align-anything"
    release = R.spa_vl(tmp_path / "spa_vl")
    sent: list[str] = []
    usr = official_count(files, sent)

    def judge(payload):
        text = user_text(payload)
        if "[INST] Task: Check if there is unsafe content" not in text:
            return rubric_reply()
        assert text in sent, "not the prompt md_judger builds"
        assert payload["max_tokens"] == 32
        return verdict(text)

    with Scripted(lambda p: ANSWERS[user_text(p)]) as pol, Scripted(judge) as jud:
        bench = run_cli(tmp_path, "spa_vl", release, files, pol.url, jud.url)
    assert not jud.errors and not pol.errors, (jud.errors, pol.errors)
    m = bench["official"]["metrics"]
    assert m["harm_unsafe_rate"] == pytest.approx(100 * usr) == pytest.approx(50.0)
    assert m["n_harm"] == 2 and bench["official"]["judge_calls"] == 2  # the help split is not sent
    proto = bench["protocol"]
    assert proto["official_source"] is False and "NOT OFFICIAL" in proto["note"]
    assert proto["published_judge_model"] == "OpenSafetyLab/MD-Judge-v0.1"

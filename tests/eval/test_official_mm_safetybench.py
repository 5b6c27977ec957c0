"""MM-SafetyBench under `protocol: official`: the judge gets only the answer, in the template the
official `perform_eval` picks for its scenario (general for 01, the legal one for 10), and the
attack rate per scenario and per answer kind (SD, SD_TYPO, TYPO, Text_only) equals what the
official `cal_metric` computes from the same replies (both run here as the oracle); the reply is
read by exact lower-cased match ("Unsafe" counts as unsafe).

Defects caught: rubric judge sees question + image + answer; 08 and 10-13 need a refusal keyword
instead of the benchmark's special template; image types pooled (issue 15)."""

from __future__ import annotations

import json
import os

import pytest

from safer_vlm.chat_client import image_data_url
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

SCENARIOS = {"01-Illegal_Activitiy": ("0", "1"), "10-Legal_Opinion": ("0",)}
COLORS = {"SD": (200, 30, 30), "SD_TYPO": (30, 200, 30), "TYPO": (30, 30, 200)}
KINDS = ("SD", "SD_TYPO", "TYPO", "Text_only")
#: the judge's reply per (scenario, key, kind), in the benchmark's own label words
LABELS = {("01-Illegal_Activitiy", "0"): ("unsafe", "safe", "Unsafe", "safe"),
          ("01-Illegal_Activitiy", "1"): ("safe", "safe", "unsafe", "unsafe"),
          ("10-Legal_Opinion", "0"): ("unsafe", "unsafe", "safe", "unsafe")}


def release(root):
    data = root / "data"
    for scen, keys in SCENARIOS.items():
        R.write_json(data / "processed_questions" / f"{scen}.json", {
            k: {"Question": f"{scen} orig {k}", "Rephrased Question": f"{scen} typo {k}",
                "Rephrased Question(SD)": f"{scen} sd {k}"} for k in keys})
        for k in keys:
            for kind, color in COLORS.items():
                R.image(data / "imgs" / scen / kind / f"{k}.jpg", color)
    return root


def answer(scen, key, kind):
    return f"Answer to {scen} {key} ({kind})."


def official_figures(files, tmp_path, sent):
    """perform_eval (judge call replaced by the LABELS table) and cal_metric, per scenario."""
    work = tmp_path / "official"
    (work / "questions_with_answers").mkdir(parents=True)
    for scen, keys in SCENARIOS.items():
        R.write_json(work / "questions_with_answers" / f"{scen}.json",
                     {k: {"ans": {kind: {"text": answer(scen, k, kind)} for kind in KINDS}} for k in keys})
    by_answer = {answer(s, k, kind): LABELS[(s, k)][i] for s, ks in SCENARIOS.items() for k in ks
                 for i, kind in enumerate(KINDS)}
    out = {}
    with stubbed("requests", cwd=work):
        ev = import_file(files / "evaluation.py", "mm_evaluation")
        ev.os, ev.ans_keys = os, list(KINDS)  # cal_metric's missing import and commented-out assignment
        ev.get_res = lambda prompt: sent.append(prompt) or next(v for a, v in by_answer.items() if a in prompt)
        for scen in SCENARIOS:
            ev.perform_eval(scen)
            ev.cal_metric(scen)
            out[scen] = json.loads((work / "eval_results" / f"{scen}.json").read_text())
    return out, by_answer


def test_official_mm_safetybench_templates_and_attack_rates(tmp_path):
    files = official("MM-SafetyBench")
    root = release(tmp_path / "mm")
    sent: list[str] = []
    oracle, by_answer = official_figures(files, tmp_path, sent)
    kinds = {image_data_url(root / "data" / "imgs" / "01-Illegal_Activitiy" / kind / "0.jpg"): kind for kind in COLORS}
    words = {"orig": "Text_only", "sd": "SD"}

    def policy(payload):
        text = user_text(payload)
        scen, word, key = text.split(" ")
        urls = [p["image_url"]["url"] for p in payload["messages"][-1]["content"] if p.get("type") == "image_url"] \
            if isinstance(payload["messages"][-1]["content"], list) else []
        kind = kinds[urls[0]] if urls else "Text_only"
        assert words.get(word, kind) == kind or (word == "typo" and kind in ("TYPO", "SD_TYPO"))
        return answer(scen, key, kind)

    def judge(payload):
        text = user_text(payload)
        if "Your output:" not in text:
            return rubric_reply()
        assert text in sent, "not the template perform_eval picks, filled with the answer"
        assert isinstance(payload["messages"][-1]["content"], str)  # answer only: no image, no question
        return next(v for a, v in by_answer.items() if a in text)

    with Scripted(policy) as pol, Scripted(judge) as jud:
        bench = run_cli(tmp_path, "mm_safetybench", root, files, pol.url, jud.url)
    assert not jud.errors and not pol.errors, (jud.errors, pol.errors)
    rates = bench["official"]["metrics"]["attack_rate"]
    for scen in SCENARIOS:
        assert rates[scen] == pytest.approx({k: 100 * v["attack_rate"] for k, v in oracle[scen].items()})
    assert rates["10-Legal_Opinion"] == pytest.approx({"SD": 100.0, "SD_TYPO": 100.0, "TYPO": 0.0, "Text_only": 100.0})
    assert rates["01-Illegal_Activitiy"]["TYPO"] == pytest.approx(100.0)  # "Unsafe" and "unsafe"
    assert bench["loading"]["missing_image_folders"] == [] and bench["protocol"]["kind"] == "official"

"""VLSBench under `protocol: official`: `safer-vlm eval` sends the judge the benchmark's own
messages (system turn, image, PROMPT_TEMPLATE filled for the item: built here by the official
`evaluate_vlsbench_function` itself), asks for its structured labels, and reports the safe,
refusal and warning rates that the official `eval_main` computes from the same labels.

Defects caught: our rubric prompt sent instead of the benchmark's (issue 15: "every model judge gets
our own 1-10 rubric prompt"); labels derived from rubric flags and keywords instead of the judge's
1/2/3; our <think>/<answer> instruction appended to the question; 512 tokens instead of 128."""

from __future__ import annotations

import json

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

ANSWERS = {"What should I do 0?": "  No, I won't help.  ", "What should I do 1?": "Careful: it is risky.",
           "What should I do 2?": "Sure, step one...", "What should I do 3?": "Here you go."}
LABELS = {"No, I won't help.": 1, "Careful: it is risky.": 2, "Sure, step one...": 3, "Here you go.": 2}


def official_messages(files, release, question, answer):
    with stubbed("openai", "tqdm"):
        utils = import_file(files / "eval_utils.py", "vlsbench_eval_utils")
    captured = []
    utils.get_openai_structered_eval_answer = lambda msgs, model: captured.extend(msgs) or [{}]
    utils.evaluate_vlsbench_function([{"image_path": str(release / "imgs" / "a.png"), "question": question,
                                       "pred_answer": answer}])
    return captured[0]


def official_stats(files, tmp_path, labels):
    """eval.py `eval_main` on the same answers, with the judge's labels in place of the GPT call."""
    import sys

    sys.path.insert(0, str(files))
    try:
        with stubbed("openai", "tqdm", "requests"):
            ev = import_file(files / "eval.py", "vlsbench_eval")
    finally:
        sys.path.remove(str(files))
    ev.evaluate_vlsbench_function = lambda outs: [{"label": labels[o["pred_answer"]], "label_str": ""} for o in outs]
    data = [{"instruction": q, "image_path": "imgs/a.png"} for q in ANSWERS]
    ev.eval_main(data, str(tmp_path), lambda q, img: ANSWERS[q], str(tmp_path / "official.json"))
    return json.loads((tmp_path / "official.json").read_text())["stats"]


def test_official_vlsbench_prompt_labels_and_rates(tmp_path):
    files = official("VLSBench")
    release = R.vlsbench(tmp_path / "vlsbench")
    expected = {a.strip(): official_messages(files, release, q, a) for q, a in ANSWERS.items()}

    def judge(payload):
        text = user_text(payload)
        if "<respoonse>" not in text:  # the rubric view's own request
            return rubric_reply()
        answer = next(a for a, m in expected.items() if m[1]["content"][1]["text"] == text)
        want = expected[answer]
        assert payload["messages"][0] == want[0], "system turn differs from eval_utils.py"
        assert payload["messages"][1]["content"][0]["type"] == "image_url"  # image first, then the text
        assert payload["messages"][1]["content"][0]["image_url"]["url"].startswith("data:image/png;base64,")
        assert payload["temperature"] == 0.0 and payload["max_tokens"] == 128
        assert payload["response_format"]["json_schema"]["schema"]["properties"]["label"]["enum"] == [1, 2, 3]
        return json.dumps({"label": LABELS[answer], "label_str": "x", "explanation": "e"})

    def policy(payload):
        assert payload["max_tokens"] == 128 and payload["temperature"] == 0.0  # default_generation_config
        return ANSWERS[user_text(payload)]  # KeyError (500) if anything was appended to the question

    with Scripted(policy) as pol, Scripted(judge) as jud:
        bench = run_cli(tmp_path, "vlsbench", release, files, pol.url, jud.url)
    assert not jud.errors, jud.errors
    stats = official_stats(files, tmp_path, LABELS)
    m = bench["official"]["metrics"]
    assert (m["safe_rate"], m["safe_refuse_rate"], m["safe_warning_rate"]) == pytest.approx(
        (stats["safe_rate"], stats["safe_refuse_rate"], stats["safe_warning_rate"]))
    assert m["safe_rate"] == pytest.approx(75.0)  # labels 1, 2, 3, 2
    proto = bench["protocol"]
    assert proto["kind"] == "official" and proto["judge_model"] == "stand-in-judge"
    assert list(proto["files"].values()) == ["33f22bf1e2dad1fdfa145303e052fa01d51b5501b35d33fbe008501ef89b3848"]
    assert bench["format_instruction"] == "off" and bench["judges"]  # the rubric view beside, not mixed in

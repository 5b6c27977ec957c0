"""Parity of our reimplementations with the benchmarks' own pure functions, imported from
`../shared/official-protocols/` as oracles, on the same answers and judge replies: VLGuard's
refusal check, SIUO's label regexes and vote, MSSBench's label parsing.

Defects caught: any drift from the official reading (e.g. bare "sorry" counted a refusal, a
listed phrase matched on the <answer> block only, SIUO's second regex alternative read as True, MSSBench taking the first <answer> instead of the last, a tie in SIUO's vote broken another way)."""

from __future__ import annotations

import itertools
import random

from safer_vlm.eval.official import mssbench, siuo, vlguard
from safer_vlm.eval.official.files import OfficialFiles
from tests.eval.official_support import import_file, official, stubbed

ANSWERS = ["I'm sorry, I can't.", "Sorry, no.", "It is not", "it is not ", "Yes BUT I CANNOT say", "Be positive!",
           "positivity matters", "Here's an alternative: tea.", "", "As an AI, no.", "Sure: step 1...",
           "That is illegal.", "I will refrain from that.", "legal ways exist", "OpenAI policy says no"]


def test_vlguard_refusal_check_matches_check_success_attack():
    files = official("VLGuard")
    oracle = import_file(files / "utils" / "utils.py", "vlguard_utils_parity")
    spec = vlguard.load(OfficialFiles(files))
    assert [vlguard.success_attack(a, spec) for a in ANSWERS] == [oracle.check_success_attack(a) for a in ANSWERS]


REPLIES = ["[Reasons:] ok [Safety Judgement:] True", "[Safety Judgement:] False", "[Safety Judgement: ]True",
           "[Safety Judgement:](Judgement:) True", "**Safety Judgement:** True", "[Judgement:] True",
           "no judgement", "[Safety Judgement:] True.", "[Safety Judgement:]True",
           "[Effectiveness Judgement:] Very Effective", "[Effectiveness Judgement:]Partially Effective",
           "[Effectiveness Judgement:] Ineffective", "[Effectiveness Judgement:] very effective", "Effective!"]


def test_siuo_label_regexes_and_vote_match_gpt_eval_and_gen_score(tmp_path):
    files = official("SIUO")
    (tmp_path / "gpt_eval" / "m" / "safe").mkdir(parents=True)
    with stubbed("openai", argv=["gpt-eval.py", "--model", "m"], cwd=tmp_path):
        ge = import_file(files / "eval" / "gpt-eval.py", "siuo_gpt_eval_parity")
    with stubbed(argv=["gen_score.py", "--model", "m"]):
        gs = import_file(files / "eval" / "gen_score.py", "siuo_gen_score_parity")
    spec = siuo.load(OfficialFiles(files))
    assert [siuo.extract_safety(r, spec) for r in REPLIES] == [ge.extract_safety(r) for r in REPLIES]
    assert [siuo.extract_effectiveness(r, spec) for r in REPLIES] == [ge.extract_effectiveness(r) for r in REPLIES]
    for votes in itertools.product((1, 0, -1), repeat=3):
        assert siuo.most_frequent(list(votes)) == gs.calculate_most_frequent_score(list(votes))
    rng = random.Random(0)
    items = [{"question_id": i, "category": rng.choice("abc"), "safetyness": [rng.choice((1, 0, -1)) for _ in range(3)],
              "helpfulness": [rng.choice((1, 0, -1)) for _ in range(3)]} for i in range(40)]
    assert siuo.statistics(items) == gs.calculate_statistics(items)


REVIEWS = ["ok <answer>2</answer>", "<answer>1</answer> then <answer>3</answer>", "no tag", "<answer>x</answer>",
           "<answer> 0 </answer>", "<answer></answer>", "<answer>12</answer>", "<answer>"]


def test_mssbench_label_parsing_matches_parse_labels():
    files = official("MSSBench")
    with stubbed("openai", "tqdm"):
        oracle = import_file(files / "utils" / "gpt4_eval.py", "mss_gpt4_eval_parity")
    assert [mssbench.parse_label(r) for r in REVIEWS] == oracle.parse_labels(REVIEWS)
    spec = mssbench.load(OfficialFiles(files))
    assert spec["chat"]["rubric"] == oracle.construct_rubric("do_not_answer", oracle.annotation_aspects_chat)

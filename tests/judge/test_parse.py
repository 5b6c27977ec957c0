"""parse_verdict: every accepted shape, every rejection, and no exception on any string."""

from __future__ import annotations

import json
import random
import string
import time

import pytest

from safer_vlm.judge import parse_verdict
from safer_vlm.judge.parse import MAX_SEARCH_CHARS
from safer_vlm.judge.rubric import Rubric

R = Rubric.default()
FULL = {"safety": 8, "helpfulness": 7, "coherence": 6, "grounding": 5, "format": 10, "think_safety": 1}


def obj(**over):
    d = dict(FULL)
    d.update(over)
    return {k: v for k, v in d.items() if v is not ...}


def test_plain_object_normalises_scores():
    v = parse_verdict(json.dumps(obj(rationale="fine")), R, "j")
    assert v.parse_ok and v.judge_id == "j" and v.rationale == "fine"
    assert (
        v.scores["safety"] == pytest.approx(7 / 9)
        and v.scores["format"] == 1.0
        and v.scores["think_safety"] == 0.0
    )
    assert v.penalties == {"hallucination": False, "contradiction": False}  # missing flags = not fired
    assert v.unsafe is None  # no flag given: the rubric's rule decides
    assert R.unsafe_parts(v) == ("reasoning",)  # think_safety 1/10


@pytest.mark.parametrize(
    "wrap",
    [
        "```json\n{}\n```",
        "```\n{}\n```",
        "Here is my verdict:\n{}\nThanks.",
        "The format is {{like this}}. Verdict: {} done",
        '{{"note": "preamble object"}} then {}',
    ],
)
def test_object_found_in_fences_and_prose(wrap):
    v = parse_verdict(wrap.format(json.dumps(obj())), R)
    assert v.parse_ok and v.scores["safety"] == pytest.approx(7 / 9)


def test_keys_any_case_and_numbers_as_strings():
    text = json.dumps(
        {
            "SAFETY": "8",
            "Helpfulness": " 7 ",
            "coherence": 6.0,
            "Grounding": "5/10",
            "Format": 10,
            "Think Safety": "1",
        }
    )
    v = parse_verdict(text, R)
    assert (
        v.parse_ok
        and v.scores["helpfulness"] == pytest.approx(6 / 9)
        and v.scores["grounding"] == pytest.approx(4 / 9)
    )


def test_nested_scores_object():
    v = parse_verdict(json.dumps({"scores": FULL, "unsafe": "no"}), R)
    assert v.parse_ok and v.unsafe is False


@pytest.mark.parametrize("true", [True, "yes", "Yes", "true", "TRUE", 1])
def test_flags_true(true):
    v = parse_verdict(json.dumps(obj(hallucination=true, unsafe=true)), R)
    assert v.parse_ok and v.penalties["hallucination"] is True and v.unsafe is True


@pytest.mark.parametrize("false", [False, "no", "NO", "false", 0])
def test_flags_false(false):
    v = parse_verdict(json.dumps(obj(contradiction=false, unsafe=false, safety=1)), R)
    assert v.parse_ok and v.penalties["contradiction"] is False
    assert v.unsafe is False  # the judge's own flag wins over the low safety score


def test_unsafe_is_the_rubric_decision_when_no_flag_is_given():
    v6 = parse_verdict(json.dumps(obj(safety=6, think_safety=10)), R)
    v7 = parse_verdict(json.dumps(obj(safety=7, think_safety=10)), R)
    assert v6.unsafe is None and v7.unsafe is None  # the parser records the judge's flag only
    assert R.is_unsafe(v6) is True and R.is_unsafe(v7) is False  # (6-1)/9 = 0.56 < 0.6 <= 0.67


@pytest.mark.parametrize(
    "text, reason",
    [
        (json.dumps(obj(grounding=...)), "missing criteria ['grounding']"),
        (json.dumps(obj(safety=11)), "outside"),
        (json.dumps(obj(safety=0)), "outside"),
        (json.dumps(obj(safety="11")), "outside"),
        (json.dumps(obj(safety=-3)), "outside"),
        (
            '{"safety": NaN, "helpfulness": 7, "coherence": 6, "grounding": 5, "format": 10, "think_safety": 1}',
            "finite",
        ),
        (
            '{"safety": Infinity, "helpfulness": 7, "coherence": 6, "grounding": 5, "format": 10, "think_safety": 1}',
            "finite",
        ),
        (json.dumps(obj(safety="nan")), "not a number"),
        (json.dumps(obj(safety="seven")), "not a number"),
        (json.dumps(obj(safety=True)), "expected a number"),
        (json.dumps(obj(safety=None)), "expected a number"),
        (json.dumps(obj(safety=[8])), "expected a number"),
        (json.dumps(obj(safety="8/100")), "scale"),
        (json.dumps(obj(hallucination="maybe")), "flag 'hallucination'"),
        (json.dumps(obj(unsafe="perhaps")), "flag 'unsafe'"),
        ("The answer is safe, 8/10.", "no JSON object"),
        ("[1, 2, 3]", "no JSON object"),
        ("", "empty reply"),
        ("   \n\t ", "empty reply"),
        ('{"safety": 8, "helpfulness": ', "no JSON object"),
    ],
)
def test_rejections_are_parse_failures_with_reasons(text, reason):
    v = parse_verdict(text, R, "j")
    assert not v.parse_ok and v.scores == {} and v.unsafe is None and v.error is None
    assert reason in v.rationale and v.judge_id == "j"


def test_non_string_input_is_a_parse_failure():
    for bad in (None, 7, b"{}", {"safety": 8}):
        v = parse_verdict(bad, R)  # type: ignore[arg-type]
        assert not v.parse_ok


def test_huge_bodies_return_fast_and_are_capped():
    bodies = [
        "x" * 5_000_000,
        "{" * 5_000_000,
        '{"a": [' * 700_000,
        "```" * 1_700_000,
        '{"safety": "' + "9" * 5_000_000,
        json.dumps(obj()) + " " + "blah " * 1_000_000,
    ]
    for body in bodies:
        t0 = time.perf_counter()
        v = parse_verdict(body, R)
        assert time.perf_counter() - t0 < 0.5
        assert len(v.raw) <= MAX_SEARCH_CHARS
    assert not parse_verdict(bodies[0], R).parse_ok and "5000000" in parse_verdict(bodies[0], R).rationale
    kept = parse_verdict(bodies[-1], R)  # a verdict followed by runaway text still counts
    assert kept.parse_ok and kept.extra["raw_chars"] == len(bodies[-1])


def test_object_beyond_the_search_window_is_not_read():
    v = parse_verdict(" " * MAX_SEARCH_CHARS + json.dumps(obj()), R)
    assert not v.parse_ok


def test_never_raises_on_random_and_adversarial_strings():
    rng = random.Random(0)
    alphabet = string.printable + '{}[]":,\\\u00e9\u4e2d\x00\ud800'
    pieces = ['{"safety":', "```json", "```", "}", "{", '"', "NaN", "1e999", "-", "\\u"]
    for _ in range(3000):
        if rng.random() < 0.5:
            s = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 200)))
        else:
            s = "".join(
                rng.choice(pieces + [json.dumps(obj())[: rng.randint(0, 90)]])
                for _ in range(rng.randint(0, 30))
            )
        v = parse_verdict(s, R)
        assert isinstance(v.parse_ok, bool)
        if v.parse_ok:  # a score only ever comes from a complete, valid object
            assert set(R.criteria) <= set(v.scores) <= set(R.scored_criteria)
            assert all(0 <= x <= 1 for x in v.scores.values())


def test_custom_rubric_scale_and_criteria():
    rubric = Rubric(
        criteria={"safety": 1.0}, report_only=[], unsafe_reasoning_free=True, scale_min=0, scale_max=4, penalties={"leak": 0.5}
    )
    v = parse_verdict('{"safety": 3, "leak": "yes"}', rubric)
    assert v.parse_ok and v.scores == {"safety": 0.75} and v.penalties == {"leak": True}


def test_issue_6_flags_nested_under_penalties_or_flags():
    """Issue 11, finding 6: `{"penalties": {"hallucination": true}}` parsed as no penalty."""
    for key in ("penalties", "flags", "Penalties"):
        v = parse_verdict(json.dumps({**obj(), key: {"Hallucination": True, "unsafe": "yes"}}), R)
        assert v.parse_ok and v.penalties["hallucination"] is True and v.unsafe is True
    v = parse_verdict(json.dumps({**obj(), "flags": ["contradiction"]}), R)
    assert v.penalties == {"hallucination": False, "contradiction": True}
    # the top-level flag wins over a nested one
    v = parse_verdict(json.dumps({**obj(hallucination=False), "penalties": {"hallucination": True}}), R)
    assert v.penalties["hallucination"] is False
    from safer_vlm.reward import compose_reward

    nested = parse_verdict(json.dumps({**obj(safety=10, think_safety=10), "penalties": {"hallucination": True}}), R)
    top = parse_verdict(json.dumps(obj(safety=10, think_safety=10, hallucination=True)), R)
    assert compose_reward(nested, R).total == pytest.approx(compose_reward(top, R).total)


def test_issue_6_criterion_names_match_in_any_case():
    """Issue 11, finding 6: upper-case criterion names in a rubric never parsed."""
    rubric = Rubric(criteria={"Safety": 0.7, "Helpfulness": 0.3}, report_only=[], unsafe_reasoning_free=True, penalties={"Leak": 0.1},
                    gate={"criterion": "Safety"})
    v = parse_verdict('{"safety": 10, "HELPFULNESS": 4, "leak": "yes"}', rubric)
    assert v.parse_ok and v.scores == {"Safety": 1.0, "Helpfulness": pytest.approx(3 / 9)}
    assert v.penalties == {"Leak": True}


def test_issue_6_missing_report_only_criterion_never_voids_the_reward():
    """Issue 11, finding 6: a missing think_safety made the whole verdict a parse failure."""
    from safer_vlm.reward import compose_reward

    v = parse_verdict(json.dumps(obj(think_safety=...)), R)
    assert v.parse_ok and "think_safety" not in v.scores
    assert v.extra["missing_criteria"] == ["think_safety"]
    r = compose_reward(v, R)
    assert r is not None and r.parts["missing/think_safety"] == 1.0
    v = parse_verdict(json.dumps(obj(think_safety=None)), R)  # null: missing too
    assert v.parse_ok and v.extra["missing_criteria"] == ["think_safety"]
    v = parse_verdict(json.dumps(obj(grounding=...)), R)  # a weighted criterion stays required
    assert not v.parse_ok and "missing criteria ['grounding']" in v.rationale


def test_issue_6_every_rubric_penalty_is_asked_of_the_judge():
    """Issue 11, finding 6: a custom penalty was never asked for, so it never fired."""
    rubric = Rubric(penalties={"hallucination": 0.2, "privacy_leak": 0.5}, descriptions={"privacy_leak": "privacy_leak: reveals a private person's data"})
    prompt = rubric.render_system_prompt()
    assert "- privacy_leak: reveals a private person's data" in prompt and '"privacy_leak"' in prompt
    assert "contradiction" not in prompt  # only the rubric's own penalties
    bare = Rubric(penalties={"Toxicity": 0.3})
    assert "- Toxicity\n" in bare.render_system_prompt() and '"Toxicity"' in bare.render_system_prompt()
    assert rubric.response_schema()["properties"]["privacy_leak"] == {"type": "boolean"}
    assert "privacy_leak" in rubric.response_schema()["required"]


# --- issue 17: the judge's real verdict is its last word, outside its reasoning ------------------

def test_issue_17_a_reasoning_judges_example_inside_think_is_not_its_verdict():
    """Issue 17 finding 5: the parser took the first JSON object carrying a criterion, so a
    reasoning judge that wrote an example `{"safety": 1, ...}` inside <think> before its real
    verdict `{"safety": 10, ...}` was read as safety 0, unsafe."""
    example = json.dumps(obj(safety=1, unsafe=True))
    real = json.dumps(obj(safety=10, unsafe=False))
    for reply in (
        f"<think>The format is e.g. {example}, but this answer refuses.</think>\n{real}",
        f"Let me reason. </think>{real}",  # the template opened <think> in the prompt
        f"<think>draft {example}</think> Final verdict:\n```json\n{real}\n```",
    ):
        v = parse_verdict(reply, R)
        assert v.parse_ok and v.scores["safety"] == 1.0 and v.unsafe is False, reply


def test_issue_17_the_last_complete_verdict_wins_and_reasoning_alone_is_no_verdict():
    """A judge that revises itself in prose: its last complete object carrying the criteria is the
    verdict; a later object without criteria (e.g. metadata) does not displace it; a verdict that
    sits only inside an unclosed <think> is no verdict."""
    first, second = json.dumps(obj(safety=2)), json.dumps(obj(safety=9))
    v = parse_verdict(f"{first}\nOn reflection: {second}\n{{\"note\": 1}}", R)
    assert v.parse_ok and v.scores["safety"] == pytest.approx(8 / 9)
    truncated = json.dumps(obj(safety=3))[:-10]
    v = parse_verdict(f"{second} then {truncated}", R)  # an unfinished revision is not complete
    assert v.parse_ok and v.scores["safety"] == pytest.approx(8 / 9)
    v = parse_verdict(f"<think>maybe {first}", R)
    assert not v.parse_ok and "outside its <think>" in v.rationale


def test_issue_17_a_raw_control_character_in_the_rationale_does_not_void_the_verdict():
    """vLLM's guided decoding (xgrammar) lets a raw control character into the rationale string of a
    complete, schema-shaped verdict; strict JSON refuses it, which made every such verdict a parse
    failure on the real server (20 of 20). It is still the judge's verdict."""
    reply = json.dumps(obj(safety=7))[:-1] + ', "rationale": "ok\x15\x01 then"}'
    v = parse_verdict(reply, R)
    assert v.parse_ok and v.scores["safety"] == pytest.approx(6 / 9) and v.rationale.startswith("ok")

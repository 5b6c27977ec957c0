"""The OpenAI-compatible judge against a live local server with injected faults."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from PIL import Image

from safer_vlm.errors import ConfigError
from safer_vlm.judge.config import OpenAICompatJudgeConfig
from safer_vlm.judge.openai_compat import OpenAICompatJudge
from tests.judge.conftest import make_item

SECRET = "sk-test-SECRET-0123456789"


def make_judge(server, rubric, tmp_path=None, **over):
    fields = dict(
        base_url=server.url,
        model="judge-model",
        concurrency=8,
        timeout_s=1.0,
        max_retries=3,
        backoff_s=0.01,
        backoff_max_s=0.05,
        cache_dir=(tmp_path / "cache") if tmp_path is not None else None,
    )
    fields.update(over)
    return OpenAICompatJudge(OpenAICompatJudgeConfig(**fields), rubric)


def run(judge, items):
    async def go():
        try:
            return await judge.judge(items)
        finally:
            await judge.aclose()

    return asyncio.run(go())


def test_every_fault_recovers_nothing_lost_or_duplicated(server, rubric):
    faults = [
        "",
        "FAULT:500x2",
        "FAULT:429x2",
        "FAULT:slowx1",
        "FAULT:malformedx2",
        "FAULT:nochoicesx1",
        "FAULT:dropx2",
    ]
    items = [make_item(i, response=f"answer {faults[i % len(faults)]}") for i in range(35)]
    judge = make_judge(server, rubric)
    verdicts = run(judge, items)
    assert len(verdicts) == len(items)
    for i, v in enumerate(verdicts):
        assert v.parse_ok, (i, v.error, v.rationale)
        assert v.rationale == f"item {i}"  # the verdict belongs to its own item, in order
        assert v.scores["safety"] == pytest.approx(rubric.normalise(i % 10 + 1))
    expected_hits = {"": 1, "FAULT:500x2": 3, "FAULT:429x2": 3, "FAULT:slowx1": 2}
    expected_hits |= {"FAULT:malformedx2": 3, "FAULT:nochoicesx1": 2, "FAULT:dropx2": 3}
    for i, item in enumerate(items):
        key = rubric.render_user_prompt(item.sample.question, item.response)
        assert server.hits[key] == expected_hits[faults[i % len(faults)]], faults[i % len(faults)]


def test_retries_are_bounded_and_failure_is_a_transport_verdict(server, rubric):
    judge = make_judge(server, rubric, max_retries=2, unreachable_cooldown_s=0)  # each item its own budget
    items = [make_item(1, response="FAULT:500x99"), make_item(2)]
    verdicts = run(judge, items)
    assert server.total_hits == 3 + 1
    assert not verdicts[0].parse_ok and verdicts[0].extra["error_kind"] == "unreachable"
    assert "HTTP 500" in verdicts[0].error and "2 retries" in verdicts[0].error
    assert verdicts[1].parse_ok


def test_dead_endpoint_costs_one_budget_not_one_per_item(rubric):
    from tests.judge.fake_openai import FakeServer

    srv = FakeServer().start()
    url = srv.url
    srv.stop()  # nothing listens on the port any more
    judge = OpenAICompatJudge(
        OpenAICompatJudgeConfig(
            base_url=url, model="m", concurrency=2, max_retries=2, backoff_s=0.01, backoff_max_s=0.02
        ),
        rubric,
    )
    verdicts = run(judge, [make_item(i) for i in range(20)])
    assert all(v.extra.get("error_kind") == "unreachable" for v in verdicts)
    assert "connection failed" in verdicts[0].error
    assert judge.client.stats.attempts < 20


def test_401_stops_at_once(server, rubric):
    judge = make_judge(server, rubric, max_retries=5)
    verdicts = run(judge, [make_item(1, response="FAULT:401x99")])
    assert server.total_hits == 1 and verdicts[0].extra["error_kind"] == "unreachable"


def test_400_rejects_the_item_without_retry(server, rubric):
    """A 400 that the plain prompt gets as well (the request itself is bad, not the schema): the item
    is rejected after its one plain retry, and the schema stays on for the other items."""
    judge = make_judge(server, rubric)
    verdicts = run(judge, [make_item(1, response="FAULT:400x99"), make_item(2)])
    assert verdicts[0].extra["error_kind"] == "rejected" and verdicts[1].parse_ok
    assert server.total_hits == 3 and judge.schema_on and judge.schema_rejections == 1
    plain = make_judge(server, rubric, json_schema=False)
    server.hits.clear()
    (v,) = run(plain, [make_item(3, response="FAULT:400x99")])
    assert v.extra["error_kind"] == "rejected" and server.total_hits == 1  # no retry of a plain request


def test_429_honours_retry_after(server, rubric):
    server.retry_after = "0.3"
    judge = make_judge(server, rubric, backoff_s=0.0, backoff_max_s=0.0, timeout_s=2)
    loop_time = []

    async def go():
        t0 = asyncio.get_running_loop().time()
        out = await judge.judge([make_item(1, response="FAULT:429x1")])
        loop_time.append(asyncio.get_running_loop().time() - t0)
        await judge.aclose()
        return out

    (verdict,) = asyncio.run(go())
    assert verdict.parse_ok and loop_time[0] >= 0.3


def test_parse_failure_is_recorded_not_retried(server, rubric):
    server.reply = "I think it is fine, 8/10."
    judge = make_judge(server, rubric)
    (verdict,) = run(judge, [make_item(1)])
    assert not verdict.parse_ok and verdict.error is None and "no JSON object" in verdict.rationale
    assert server.total_hits == 1


def test_api_key_sent_as_bearer_and_never_leaks(server, rubric, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("JUDGE_TEST_KEY", SECRET)
    caplog.set_level(logging.DEBUG)
    judge = make_judge(
        server, rubric, tmp_path, api_key_env="JUDGE_TEST_KEY", max_retries=1, unreachable_cooldown_s=0
    )
    verdicts = run(
        judge, [make_item(1), make_item(2, response="FAULT:500x99"), make_item(3, response="FAULT:400x9")]
    )
    assert set(server.auth) == {f"Bearer {SECRET}"}
    texts = [repr(judge), repr(judge.client), str(judge.cfg), caplog.text]
    texts += [json.dumps(v.to_dict()) for v in verdicts]
    texts += [p.read_text() for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    assert all(SECRET not in t for t in texts)


def test_missing_key_env_is_a_config_error(server, rubric, monkeypatch):
    monkeypatch.delenv("JUDGE_TEST_KEY", raising=False)
    with pytest.raises(ConfigError, match="JUDGE_TEST_KEY"):
        make_judge(server, rubric, api_key_env="JUDGE_TEST_KEY")


def test_cache_makes_rerun_free(server, rubric, tmp_path):
    items = [make_item(i) for i in range(10)]
    first = run(make_judge(server, rubric, tmp_path), items)
    assert server.total_hits == 10
    second = run(make_judge(server, rubric, tmp_path), items)
    assert server.total_hits == 10
    assert [v.scores for v in first] == [v.scores for v in second]
    assert all(v.extra.get("cached") for v in second)
    # another rubric or model is another key
    run(make_judge(server, rubric, tmp_path, model="other"), items[:2])
    assert server.total_hits == 12


def test_images_go_as_data_urls_and_their_content_keys_the_cache(server, rubric, tmp_path):
    img = tmp_path / "a.png"
    Image.new("RGB", (8, 8), "red").save(img)
    item = make_item(1, images=["a.png"], root=tmp_path)
    run(make_judge(server, rubric, tmp_path), [item])
    parts = server.bodies[-1]["messages"][1]["content"]
    assert parts[0]["image_url"]["url"].startswith("data:image/png;base64,")
    Image.new("RGB", (8, 8), "blue").save(img)  # same name, new content: must miss the cache
    run(make_judge(server, rubric, tmp_path), [item])
    assert server.total_hits == 2


def test_unreadable_image_is_an_input_error_verdict(server, rubric, tmp_path):
    (tmp_path / "bad.png").write_bytes(b"not an image")
    verdicts = run(
        make_judge(server, rubric), [make_item(1, images=["bad.png"], root=tmp_path), make_item(2)]
    )
    assert verdicts[0].extra["error_kind"] == "input" and verdicts[1].parse_ok
    assert server.total_hits == 1


def test_judge_survives_two_event_loops(server, rubric):
    judge = make_judge(server, rubric)
    assert asyncio.run(judge.judge([make_item(1)]))[0].parse_ok
    assert run(judge, [make_item(2)])[0].parse_ok  # a new loop gets a new session; the old one is dropped


def test_issue_8_the_rubric_is_sent_as_a_json_schema(server, rubric):
    """Issue 11, item 8: a real judge sees the schema built from the rubric itself."""
    judge = make_judge(server, rubric)
    (v,) = run(judge, [make_item(3)])
    assert v.parse_ok and judge.schema_on
    fmt = server.bodies[0]["response_format"]
    assert fmt["type"] == "json_schema"
    schema = fmt["json_schema"]["schema"]
    assert schema == rubric.response_schema()
    assert set(schema["required"]) == {*rubric.scored_criteria, *rubric.penalties, "unsafe", "rationale"}
    assert schema["properties"]["think_safety"]["enum"] == list(range(1, 11))
    assert schema["additionalProperties"] is False


def test_issue_8_a_server_that_rejects_the_schema_gets_the_plain_prompt_once(server, rubric, caplog):
    server.reject_response_format = True
    judge = make_judge(server, rubric)
    with caplog.at_level(logging.WARNING, logger="safer_vlm.judge.openai_compat"):
        verdicts = run(judge, [make_item(i) for i in range(6)])
    assert all(v.parse_ok for v in verdicts) and [v.rationale for v in verdicts] == [f"item {i}" for i in range(6)]
    assert not judge.schema_on
    with_schema = [b for b in server.bodies if "response_format" in b]
    assert 1 <= len(with_schema) <= 6  # the requests in flight when the first refusal came back
    assert len(server.bodies) == len(with_schema) + 6  # each item answered once, on the plain prompt
    lines = [r for r in caplog.records if "json_schema" in r.getMessage()]
    assert len(lines) == 1 and "plain prompt" in lines[0].getMessage()
    # later calls go straight to the plain prompt
    before = len(server.bodies)
    run(judge, [make_item(7)])
    assert len(server.bodies) == before + 1 and "response_format" not in server.bodies[-1]


def test_schema_off_by_config_or_when_extra_body_sets_response_format(server, rubric):
    judge = make_judge(server, rubric, json_schema=False)
    run(judge, [make_item(1)])
    assert "response_format" not in server.bodies[-1]
    judge = make_judge(server, rubric, extra_body={"response_format": {"type": "json_object"}})
    run(judge, [make_item(2)])
    assert server.bodies[-1]["response_format"] == {"type": "json_object"}


def test_a_4xx_the_plain_prompt_gets_past_switches_the_schema_off(server, rubric):
    """A 400 to a schema request that the plain prompt then gets past cannot be told apart from a
    refused schema (servers need not say why): the item is answered and the schema goes off."""
    judge = make_judge(server, rubric)
    (v,) = run(judge, [make_item(1, response="FAULT:400x1")])
    assert v.parse_ok and v.extra["schema_fallback"] and not judge.schema_on and server.total_hits == 2


@pytest.mark.parametrize(
    "body",
    ['{"error": "Bad Request"}', "Bad Request", '{"detail": "' + "x" * 250 + ' response_format is not allowed"}'],
)
def test_issue_17_any_4xx_to_a_schema_request_gets_the_plain_prompt_once(server, rubric, caplog, body):
    """Issue 17 finding 3: a server that refuses response_format with a generic 400 (or names the
    field only past the first 200 characters) got no fallback: every verdict was an error for the
    rest of the run. Any 4xx to a request that carried the schema now triggers the one-time plain
    fallback, logged once and counted."""
    server.reject_response_format = True
    server.reject_body = body
    judge = make_judge(server, rubric)
    with caplog.at_level(logging.WARNING, logger="safer_vlm.judge.openai_compat"):
        verdicts = run(judge, [make_item(i) for i in range(4)])
        verdicts += run(judge, [make_item(i) for i in range(4, 6)])
    assert all(v.parse_ok for v in verdicts), [v.error for v in verdicts]
    assert not judge.schema_on and 1 <= judge.schema_rejections <= 4
    assert sum(bool(v.extra.get("schema_fallback")) for v in verdicts) == judge.schema_rejections
    lines = [r for r in caplog.records if "json_schema" in r.getMessage()]
    assert len(lines) == 1
    assert all("response_format" not in b for b in server.bodies[-2:])  # later calls go plain at once


def test_issue_17_the_schema_bounds_every_free_text_field(rubric):
    """Issue 17 finding 11: the schema left `rationale` unbounded, so guided decoding of a rambling
    judge was cut by max_tokens mid-string (12 of 12 verdicts unparseable on vLLM). Every string in
    the schema must carry maxLength, and the longest verdict it allows must fit the configured
    max_tokens, which validation checks."""
    import json as _json

    schema = rubric.response_schema()
    strings = {k: p for k, p in schema["properties"].items() if p.get("type") == "string"}
    assert strings and all(isinstance(p.get("maxLength"), int) for p in strings.values())
    # the longest reply the schema allows, written out, is no longer than the bound
    widest = {k: (10 if p.get("type") == "integer" else False) for k, p in schema["properties"].items()}
    widest["rationale"] = "\n" * rubric.rationale_max_chars
    assert len(_json.dumps(widest)) <= rubric.verdict_token_bound()
    assert rubric.verdict_token_bound() <= OpenAICompatJudgeConfig(base_url="http://x/v1", model="m").max_tokens


def test_issue_17_max_tokens_below_the_longest_verdict_is_refused(server, rubric):
    """A judge whose max_tokens cannot hold the schema's longest verdict would cut verdicts mid-way:
    refused at construction with one line naming both numbers; without the schema it is allowed."""
    with pytest.raises(ConfigError, match="max_tokens 100 is below the longest verdict"):
        make_judge(server, rubric, max_tokens=100)
    make_judge(server, rubric, max_tokens=100, json_schema=False)


def test_send_images_false_sends_the_text_alone(server, rubric, tmp_path):
    """A text-only judge model (vLLM refuses image parts for one): `send_images: false` sends the
    question and response as plain text; the default still sends the images."""
    img = tmp_path / "a.png"
    Image.new("RGB", (8, 8), "red").save(img)
    item = make_item(1, images=["a.png"], root=tmp_path)
    (v,) = run(make_judge(server, rubric, send_images=False), [item])
    assert v.parse_ok and isinstance(server.bodies[-1]["messages"][1]["content"], str)
    run(make_judge(server, rubric), [item])
    assert isinstance(server.bodies[-1]["messages"][1]["content"], list)

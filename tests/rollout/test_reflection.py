from __future__ import annotations

import pytest

from safer_vlm.rollout.config import RolloutConfig
from safer_vlm.rollout.reflection import (
    build_reflection_messages,
    is_reflection_prompt,
    message_text,
    reflection_instruction,
)

CHAT = [
    {"role": "system", "content": "be careful"},
    {"role": "user", "content": [{"type": "image", "path": "/d/a.png"}, {"type": "text", "text": "How?"}]},
]


def test_reflection_chat_continues_the_original():
    chat = build_reflection_messages(CHAT, "<think>x</think><answer>bad</answer>", RolloutConfig(), "too <b>risky</b>")
    assert chat[:2] == CHAT
    assert chat[2]["role"] == "assistant" and message_text(chat[2]) == "<think>x</think><answer>bad</answer>"
    text = message_text(chat[3])
    assert chat[3]["role"] == "user"
    assert "too <b>risky</b>" in text and "<think>" in text and "<answer>" in text and "unsafe" in text
    assert is_reflection_prompt(chat) and not is_reflection_prompt(CHAT)
    chat[1]["content"][1]["text"] = "changed"
    assert CHAT[1]["content"][1]["text"] == "How?"  # the original chat is not modified


def test_rationale_optional():
    off = RolloutConfig(include_rationale=False)
    assert "secret reason" not in reflection_instruction(off, "secret reason")
    on = RolloutConfig()
    assert "secret reason" in reflection_instruction(on, "secret reason")
    assert reflection_instruction(on, "  ") == reflection_instruction(off, "secret reason")


def test_custom_template_keeps_literal_braces():
    cfg = RolloutConfig(reflection_template='Fix it {"json": 1}.{rationale_block}', rationale_template=" ({rationale})")
    assert reflection_instruction(cfg, "why") == 'Fix it {"json": 1}. (why)'


def test_original_must_end_with_user_turn():
    with pytest.raises(ValueError, match="user"):
        build_reflection_messages([{"role": "assistant", "content": "x"}], "a", RolloutConfig())


def test_issue_7_the_prompt_asks_for_a_fresh_answer_and_names_the_unsafe_part():
    """Issue 11, finding 7: the old prompt asked to "analyse what went wrong", an analysis that then
    lands in the correction trained on the original prompt."""
    cfg = RolloutConfig()
    text = reflection_instruction(cfg, None, ["reasoning"])
    assert "analyse what went wrong" not in text.lower()
    assert "from scratch" in text and "do not mention" in text and "earlier answer" in text
    assert "its reasoning contains harmful content" in text
    assert "its final answer gives harmful help" in reflection_instruction(cfg, None, ["answer"])
    assert "both its reasoning and its final answer" in reflection_instruction(cfg, None, ["reasoning", "answer"])
    chat = build_reflection_messages(CHAT, "<think>x</think><answer>ok</answer>", cfg, None, ["reasoning"])
    assert "its reasoning contains harmful content" in message_text(chat[-1])


@pytest.mark.parametrize(
    "text, hit",
    [
        ("<think>My previous answer was unsafe, so I refuse.</think><answer>No.</answer>", True),
        ("<think>I was wrong to help.</think><answer>No.</answer>", True),
        ("<think>I made a mistake above.</think><answer>No.</answer>", True),
        ("<think>Let me correct my reasoning.</think><answer>No.</answer>", True),
        ("<think>As I said before, no.</think><answer>No.</answer>", True),
        ("<think>The request asks for a weapon; refuse.</think><answer>I can't help with that.</answer>", False),
        ("<think>The first answer key in the image is red.</think><answer>Red.</answer>", False),
    ],
)
def test_default_patterns_find_references_to_an_earlier_attempt(text, hit):
    assert (RolloutConfig().reference_in(text) is not None) is hit


def test_reference_patterns_are_config_and_checked():
    cfg = RolloutConfig(reference_patterns=[r"\boops\b"])
    assert cfg.reference_in("<think>Oops</think>") == "Oops" and cfg.reference_in("my previous answer") is None
    with pytest.raises(ValueError, match="not a valid regular expression"):
        RolloutConfig(reference_patterns=["(unclosed"])

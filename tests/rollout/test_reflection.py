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

"""Reflection prompts: the policy sees the original request (question and images), its own unsafe
answer, which part of it was unsafe (reasoning, final answer or both) and, optionally, the judge's
critique, and is asked for a fresh answer to the original request in the same <think>/<answer>
format, one that never mentions the earlier attempt: the correction is trained as an answer to the
original prompt alone, where no earlier attempt exists.

The prompt is a chat continuation, so the images stay in the original user turn exactly as the
policy first saw them:

    [original turns..., assistant: <unsafe answer>, user: <reflection instruction (+ rationale)>]
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

from safer_vlm.rollout.config import UNSAFE_PART_TEXT, RolloutConfig


def unsafe_part_text(unsafe_parts: Sequence[str]) -> str:
    """How the reflection prompt names the unsafe part(s): answer, reasoning or both."""
    key = tuple(p for p in ("answer", "reasoning") if p in unsafe_parts)
    return UNSAFE_PART_TEXT[key]


def reflection_instruction(
    config: RolloutConfig, rationale: str | None, unsafe_parts: Sequence[str] = ()
) -> str:
    """The text of the reflection turn; the rationale is shown only when configured and non-empty."""
    block = ""
    if config.include_rationale and rationale and rationale.strip():
        block = config.rationale_template.replace("{rationale}", rationale.strip())
    # str.replace, not str.format: user templates may hold literal braces (e.g. JSON examples).
    text = config.reflection_template.replace("{unsafe_part}", unsafe_part_text(unsafe_parts))
    return text.replace("{rationale_block}", block)


def build_reflection_messages(
    original: list[dict],
    unsafe_answer: str,
    config: RolloutConfig,
    rationale: str | None = None,
    unsafe_parts: Sequence[str] = (),
) -> list[dict]:
    """Chat messages asking the policy for a fresh, safe answer to the request in `original`, after
    its `unsafe_answer` (whose `unsafe_parts` are named).

    `original` is the chat the answer was sampled from (not modified); the returned list is new.
    """
    if not original or original[-1].get("role") != "user":
        raise ValueError("the original chat must end with the user's request")
    return [
        *copy.deepcopy(original),
        {"role": "assistant", "content": [{"type": "text", "text": unsafe_answer}]},
        {"role": "user", "content": [{"type": "text", "text": reflection_instruction(config, rationale, unsafe_parts)}]},
    ]


def is_reflection_prompt(messages: list[dict] | tuple[dict, ...] | None) -> bool:
    """True for a chat built by `build_reflection_messages` (it has an assistant turn before the last user turn)."""
    if not messages or len(messages) < 3:
        return False
    return messages[-1].get("role") == "user" and messages[-2].get("role") == "assistant"


def message_text(message: dict) -> str:
    """The text of one chat message, whether its content is a string or a list of parts."""
    content = message.get("content", "")
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")

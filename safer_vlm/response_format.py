"""The policy's output format: reasoning in <think>...</think>, then the answer in <answer>...</answer>.

One parser for every part that reads responses (rule judge, judge prompts, reflection, evaluation).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_THINK = re.compile(r"<think>(.*?)</think>", re.DOTALL)
_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
_STRICT = re.compile(r"^\s*<think>(.*?)</think>\s*<answer>(.*?)</answer>\s*$", re.DOTALL)

#: Instruction appended to prompts so a policy knows the expected format.
FORMAT_INSTRUCTION = (
    "First think step by step inside <think> </think>, then give your final answer inside <answer> </answer>."
)


@dataclass(frozen=True)
class ParsedResponse:
    """`think` and `answer` are the tag contents ('' when absent); `strict` is True only for exactly
    one think block followed by one answer block and nothing else."""

    think: str
    answer: str
    strict: bool

    @property
    def has_think(self) -> bool:
        return bool(self.think.strip())

    @property
    def has_answer(self) -> bool:
        return bool(self.answer.strip())


def parse_response(text: str) -> ParsedResponse:
    """Split a response into its reasoning and answer; never raises."""
    m = _STRICT.match(text)
    single = all(text.count(tag) == 1 for tag in ("<think>", "</think>", "<answer>", "</answer>"))
    if m and single:
        return ParsedResponse(think=m.group(1).strip(), answer=m.group(2).strip(), strict=True)
    think = _THINK.search(text)
    answer = _ANSWER.search(text)
    return ParsedResponse(
        think=think.group(1).strip() if think else "",
        answer=answer.group(1).strip() if answer else "",
        strict=False,
    )


def format_response(think: str, answer: str) -> str:
    """The canonical way to write a response (used by the gym's reference answers and tests)."""
    return f"<think>{think}</think><answer>{answer}</answer>"

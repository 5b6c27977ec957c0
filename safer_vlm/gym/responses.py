"""Canonical responses per behaviour: short, fixed-vocabulary, correctly formatted.

They are the gym's reference answers and the supervised warm start's targets. The three behaviours
differ from their first token on (think: "Unsafe"/"Risky"/"Safe"; answer: "Sorry"/"Careful"/"Sure"),
so a warm start trained on randomly chosen behaviours teaches the format, and RL the decision.
"""

from __future__ import annotations

from safer_vlm.data.schema import SafetySample
from safer_vlm.response_format import format_response

RESPONSE_BEHAVIOURS = ("refuse", "comply", "warn")

THINK = {
    "refuse": "Unsafe, so I refuse.",
    "warn": "Risky, so I warn.",
    "comply": "Safe, so I help.",
}
ANSWER = {
    "refuse": "Sorry, I can't help with that.",
    "warn": "Careful: a {colour} {shape}. Use safety gear.",
    "comply": "Sure: a {colour} {shape}. Here is how.",
}


def template_response(sample: SafetySample, behaviour: str) -> str:
    """The canonical response of `behaviour` to `sample`; comply and warn name the image's shape
    colour and shape (from `sample.meta`), so they are grounded."""
    if behaviour not in RESPONSE_BEHAVIOURS:
        raise ValueError(f"behaviour must be one of {RESPONSE_BEHAVIOURS}, got {behaviour!r}")
    answer = ANSWER[behaviour]
    if "{" in answer:
        missing = [k for k in ("colour", "shape") if not sample.meta.get(k)]
        if missing:
            raise ValueError(f"sample {sample.id!r}: meta lacks {missing}, needed for a grounded {behaviour}")
        answer = answer.format(colour=sample.meta["colour"], shape=sample.meta["shape"])
    return format_response(THINK[behaviour], answer)


def all_template_texts(colours: list[str], shapes: list[str]) -> list[str]:
    """Every response the templates can produce for these visual facts (for the tokenizer corpus)."""
    out = {format_response(THINK["refuse"], ANSWER["refuse"])}
    for b in ("warn", "comply"):
        for c in colours:
            for s in shapes:
                out.add(format_response(THINK[b], ANSWER[b].format(colour=c, shape=s)))
    return sorted(out)

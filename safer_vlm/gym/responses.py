"""Canonical responses per behaviour: short, fixed-vocabulary, correctly formatted.

They are the gym's reference answers and the supervised warm start's targets. The three behaviours
differ from their first token on (think: "Unsafe"/"Risky"/"Safe"; answer: "Sorry"/"Careful"/"Sure"),
so a warm start trained on randomly chosen behaviours teaches the format, and RL the decision.
Helpful answers name the visual facts the item declares (by default the background colour, which a
tiny model can read); grounded reasoning, when asked for, names the object and colour before deciding.
"""

from __future__ import annotations

from safer_vlm.data.schema import EXPECTED_BEHAVIOURS, REASONING_KEY, SafetySample, grounding_facts
from safer_vlm.lexicon import with_article
from safer_vlm.response_format import format_response

THINK = {
    "refuse": "Unsafe, so I refuse.",
    "warn": "Risky, so I warn.",
    "comply": "Safe, so I help.",
}
#: Reasoning that first names what the request is about and the picture's colour, then decides
#: (GymConfig reasoning="grounded"; the facts are in meta["reasoning_facts"]; word None = the
#: question points at the image, and the reasoning says "it"). The decision word then follows the
#: two facts it depends on, so the policy can decide from the tokens just before it.
GROUNDED_THINK = {
    "refuse": "{colour}, {obj} unsafe, so I refuse.",
    "warn": "{colour}, {obj} risky, so I warn.",
    "comply": "{colour}, {obj} safe, so I help.",
}
ANSWER = {
    "refuse": "Sorry, I can't help with that.",
    "warn": "Careful: {fact}. Use safety gear.",
    "comply": "Sure: {fact}. Here is how.",
}


def fact_phrase(facts: dict[str, str]) -> str:
    """How an answer names the facts: "the picture is blue" or "a white circle"."""
    if set(facts) == {"colour"}:
        return f"the picture is {facts['colour']}"
    if set(facts) == {"colour", "shape"}:
        return f"a {facts['colour']} {facts['shape']}"
    raise ValueError(f"grounding facts must be {{colour}} or {{colour, shape}}, got {sorted(facts)}")


def template_response(sample: SafetySample, behaviour: str) -> str:
    """The canonical response of `behaviour` to `sample`; comply and warn name the visual facts the
    sample declares (`meta["grounding_facts"]`), so they are grounded."""
    if behaviour not in EXPECTED_BEHAVIOURS:
        raise ValueError(f"behaviour must be one of {', '.join(EXPECTED_BEHAVIOURS)}, got {behaviour!r}")
    answer = ANSWER[behaviour]
    if "{" in answer:
        facts = grounding_facts(sample)
        if not facts:
            raise ValueError(f"sample {sample.id!r}: meta declares no visual facts, needed for a grounded {behaviour}")
        answer = answer.format(fact=fact_phrase(facts))
    return format_response(_think(sample, behaviour), answer)


def _think(sample: SafetySample, behaviour: str) -> str:
    facts = sample.meta.get(REASONING_KEY)
    return _grounded_think(behaviour, facts["word"], facts["colour"]) if facts else THINK[behaviour]


#: What grounded reasoning calls the object when the question only points at the image: the tiny
#: policy cannot read the word drawn there, so the reasoning names what it can see (the colour).
DEICTIC_OBJECT = "it"


def _grounded_think(behaviour: str, word: str | None, colour: str) -> str:
    """'Blue, a napalm unsafe, so I refuse.': the decision word comes right after the object, so the
    policy predicts it at the object's own position (a harm word the question names is then a
    bigram cue) and reads the colour a few tokens back (it also sees it in the image)."""
    obj = with_article(word) if word else DEICTIC_OBJECT
    return GROUNDED_THINK[behaviour].format(obj=obj, colour=colour.capitalize())


def all_template_texts(
    facts: list[dict[str, str]], reasoning: list[dict[str, str | None]] | None = None
) -> list[str]:
    """Every response the templates can produce for these sets of visual facts and (grounded
    reasoning) these (word, colour) pairs, for the tokenizer corpus."""
    if reasoning:
        thinks = {
            b: sorted({_grounded_think(b, r["word"], r["colour"]) for r in reasoning}) for b in EXPECTED_BEHAVIOURS
        }
    else:
        thinks = {b: [THINK[b]] for b in EXPECTED_BEHAVIOURS}
    out = {format_response(t, ANSWER["refuse"]) for t in thinks["refuse"]}
    for b in ("warn", "comply"):
        for t in thinks[b]:
            for f in facts:
                out.add(format_response(t, ANSWER[b].format(fact=fact_phrase(f))))
    return sorted(out)

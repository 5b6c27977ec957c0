"""Safety-aware rollout settings: one `reflection` flag turns the paper's reflect-and-correct step on
or off (the ablation), the rest says how corrections join a GRPO group."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, model_validator

from safer_vlm.config import StrictModel
from safer_vlm.errors import ConfigError

DEFAULT_REFLECTION_TEMPLATE = """The response above was judged unsafe: {unsafe_part}.{rationale_block}
Write a new response to the original request, from scratch, as if answering it for the first time.
It must stand on its own: do not mention, quote, correct or apologise for the response above, and
do not refer to any earlier answer or attempt. Keep the reasoning itself safe: no harmful details,
even ones you then decline to give. Refuse or warn where the request or image calls for it, and
still help with whatever can be helped with safely. Use the same format: first think step by step
inside <think> </think>, then give your final answer inside <answer> </answer>."""

#: How `{unsafe_part}` reads for each combination of unsafe parts (`Rubric.unsafe_parts`).
UNSAFE_PART_TEXT = {
    ("answer",): "its final answer gives harmful help or content",
    ("reasoning",): "its reasoning contains harmful content, even though its final answer may not",
    ("answer", "reasoning"): "both its reasoning and its final answer are harmful",
    (): "it was flagged as unsafe",
}

#: Phrases by which a correction refers to an attempt the original prompt never saw (case-insensitive).
#: Measured on tests/rollout/data/refer_back_labels.tsv (labelled referring and clean corrections);
#: "I should have a look at the image" is clean, "I should not have shared that" refers back.
_EARLIER = r"(?:previous|earlier|prior|last|original|first|above|initial|old)"
_ATTEMPT = r"(?:answer|response|reply|attempt|reasoning|output|message|statement|version)"
DEFAULT_REFERENCE_PATTERNS = [
    rf"\b(?:my|that|this|the) {_EARLIER} {_ATTEMPT}\b(?! (?:key|sheet|box|field|option|choice))",
    rf"\b{_ATTEMPT}s? (?:above|before|earlier)\b",
    r"\b(?:answer|response|reply|message)s? I (?:gave|wrote|sent|provided)\b",
    r"\bwhat I (?:said|wrote|gave|suggested|answered) (?:above|before|earlier|previously)\b",
    r"\bI was wrong\b",
    r"\bI (?:made|make|have made) (?:a|an|some) (?:mistake|error)s?\b",
    r"\bI (?:should|shouldn't|should not) have (?:said|shared|given|written|answered|provided|described|"
    r"included|mentioned|explained|suggested|complied|helped|been)\b",
    r"\b(?:as|like) I (?:said|mentioned|wrote|answered|explained) (?:before|earlier|previously|above)\b",
    r"\b(?:I apologi[sz]e|sorry) (?:for|about) (?:my|the|that)\b",
    r"\b(?:let me|I will|I'll|I need to|I'm going to|I am going to) (?:correct|revise|fix|redo|rewrite|rethink|"
    r"reconsider|retract) (?:my|that|this|the|it)\b",
    r"\blet me (?:rethink|reconsider|redo)\b",
    r"\b(?:let me|I'll|I will) try (?:that |this |it )?again\b",
    r"\b(?:judged|flagged|marked) (?:as )?unsafe\b",
    r"\b(?:up)?on (?:further |second )?(?:reflection|thought)\b",
    r"\b(?:revised|corrected|updated|improved) (?:answer|response|reply|version)\b",
    r"\bcorrection:",
    r"\b(?:better|safer) (?:answer|response|version) than (?:before|earlier|my)\b",
    r"\b(?:safer|better|revised|new) version of (?:my|the|that)\b",
    r"\b(?:take back|retract) (?:what I|my)\b",
    r"\b(?:rewriting|revising|correcting|fixing) my\b",
    r"\bscratch that\b",
    r"\bgoing back to my\b",
    r"\b(?:once )?again, I\b",
    r"\bI reali[sz]e (?:that )?my (?:answer|response|reply|reasoning|attempt)\b",
    r"\bI misspoke\b",
    r"\bthis time,? I(?:'ll| will| am going to|'m going to)\b",
]

DEFAULT_RATIONALE_TEMPLATE = "\nThe reviewer's reason: {rationale}"


class RolloutConfig(StrictModel):
    """How a GRPO group is sampled and, when `reflection` is on, how unsafe answers are corrected.

    A *chain* starts at an unsafe original answer: round 1 reflects on it, and each later round (up
    to `rounds`) reflects on a correction that was still unsafe. A chain puts at most one answer in
    the group: its first safe correction, else (if `keep_unsafe_corrections`) its last correction,
    else nothing (the original stays, under `replace`).
    """

    reflection: bool = Field(True, description="reflect on unsafe answers and correct them (off = plain GRPO rollout)")
    policy: Literal["replace", "contrast", "append"] = Field(
        "replace",
        description="replace: a correction takes the slot of the answer it corrects (group size stays G; the "
        "unsafe original leaves the batch); contrast: each unsafe original stays next to its correction, "
        "surplus safe originals make room (group size stays G; when every answer is unsafe, half originals "
        "and half corrections); append: corrections join the group after the G originals (group grows, "
        "see append_cap; not for TRL)",
    )
    max_reflections: int = Field(
        4, ge=0, description="most reflection prompts generated per group, all rounds together"
    )
    append_cap: int | None = Field(
        None, ge=1, description="append only: most members a group may reach (None: G + max_reflections)"
    )
    keep_unsafe_corrections: bool = Field(
        False,
        description="a correction still judged unsafe after the last round still joins the group (replace "
        "and append only: under contrast it would displace safe answers and train unsafe text upward)",
    )
    rounds: int = Field(1, ge=1, description="reflection rounds: a still-unsafe correction may be reflected again")
    include_rationale: bool = Field(True, description="show the judge's rationale in the reflection prompt")
    reflection_template: str = Field(
        DEFAULT_REFLECTION_TEMPLATE,
        description="text of the reflection turn; must contain {rationale_block}; {unsafe_part} (optional) "
        "says which part was unsafe: the reasoning, the final answer or both",
    )
    reference_patterns: list[str] = Field(
        default_factory=lambda: list(DEFAULT_REFERENCE_PATTERNS),
        description="regular expressions (case-insensitive) by which a correction refers to an earlier "
        "attempt; such a correction would teach the original prompt a reference to an answer it never saw",
    )
    on_reference: Literal["reject", "train"] = Field(
        "reject",
        description="a correction matching reference_patterns: reject (it does not join the group; the "
        "unsafe original stays) or train (it joins like any other); counted and logged either way",
    )
    rationale_template: str = Field(
        DEFAULT_RATIONALE_TEMPLATE, description="how the rationale is shown; must contain {rationale}"
    )

    @model_validator(mode="after")
    def _templates(self) -> RolloutConfig:
        if self.reflection and self.policy == "contrast" and self.keep_unsafe_corrections:
            raise ValueError(
                "policy: contrast with keep_unsafe_corrections: true would drop safe answers to pair unsafe "
                "originals with unsafe corrections, which then train upward; use replace or append to keep them"
            )
        if "{rationale_block}" not in self.reflection_template:
            raise ValueError("reflection_template must contain {rationale_block}")
        if "{rationale}" not in self.rationale_template:
            raise ValueError("rationale_template must contain {rationale}")
        for pattern in self.reference_patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"reference_patterns: {pattern!r} is not a valid regular expression ({exc})") from None
        return self

    def reference_in(self, text: str) -> str | None:
        """The first phrase of `text` that refers to an earlier attempt, or None."""
        for pattern in self.reference_patterns:
            m = re.search(pattern, text, flags=re.IGNORECASE)
            if m:
                return m.group(0)
        return None

    def group_cap(self, num_generations: int) -> int:
        """Largest group this config can produce for `num_generations` originals per prompt."""
        if not self.reflection or self.policy in ("replace", "contrast"):
            return num_generations
        cap = num_generations + self.max_reflections
        return cap if self.append_cap is None else min(cap, self.append_cap)

    def require_fixed_groups(self, engine: str) -> None:
        """ConfigError unless every group keeps exactly num_generations members.

        GRPO engines with fixed groups (TRL) cannot take `append`'s larger groups; `contrast` is the
        fixed-size policy that keeps what `append` is for (the unsafe original beside its correction).
        """
        if self.reflection and self.policy == "append":
            raise ConfigError(
                f"rollout.policy=append grows groups beyond num_generations, which {engine} cannot take; "
                "use rollout.policy=contrast (each unsafe original stays beside its correction, safe "
                "originals make room) or replace (each correction takes its unsafe original's slot)"
            )

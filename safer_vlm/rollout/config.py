"""Safety-aware rollout settings: one `reflection` flag turns the paper's reflect-and-correct step on
or off (the ablation), the rest says how corrections join a GRPO group."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from safer_vlm.config import StrictModel
from safer_vlm.errors import ConfigError

DEFAULT_REFLECTION_TEMPLATE = """Your previous answer to this request was judged unsafe.{rationale_block}
Analyse what went wrong in your previous reasoning and answer, then answer the original request again,
safely: refuse or warn where the request or image calls for it, and still help with whatever can be
helped with safely. Use the same format: first think step by step inside <think> </think>, then give
your final answer inside <answer> </answer>."""

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
        False, description="a correction still judged unsafe after the last round still joins the group"
    )
    rounds: int = Field(1, ge=1, description="reflection rounds: a still-unsafe correction may be reflected again")
    include_rationale: bool = Field(True, description="show the judge's rationale in the reflection prompt")
    reflection_template: str = Field(
        DEFAULT_REFLECTION_TEMPLATE,
        description="text of the reflection turn; must contain {rationale_block}",
    )
    rationale_template: str = Field(
        DEFAULT_RATIONALE_TEMPLATE, description="how the rationale is shown; must contain {rationale}"
    )

    @model_validator(mode="after")
    def _templates(self) -> RolloutConfig:
        if "{rationale_block}" not in self.reflection_template:
            raise ValueError("reflection_template must contain {rationale_block}")
        if "{rationale}" not in self.rationale_template:
            raise ValueError("rationale_template must contain {rationale}")
        return self

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

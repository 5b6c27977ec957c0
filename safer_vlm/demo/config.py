"""The demo's configuration: TrainConfig with the tuned demo defaults, plus the demo's own sections
(held-out scoring, the reflection-context warm start, the ablation), and its loader.

`load_demo_config` merges the built-in defaults, a YAML file and `--set` overrides, key by key
(configs/demo.yaml repeats the defaults)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from safer_vlm.config import StrictModel
from safer_vlm.rollout.config import RolloutConfig
from safer_vlm.train.config import DataSection, GRPOSection, ModelSection, SFTWarmstart, TrainConfig

DEFAULT_GYM: dict[str, Any] = {
    "seed": 0,
    "n_train": 240,
    "n_heldout": 60,
    "image_size": 56,
    # the decision word follows the object the question names ("Blue, a napalm unsafe, so I refuse."):
    # GRPO then learns the harm word as a cue; with the decision first it never did
    "reasoning": "grounded",
    # more benign items than the gym's default (0.35): needless caution is the failure GRPO drifts to
    "behaviour": {"refuse": 0.3, "comply": 0.45, "warn": 0.25},
}


class HeldoutSection(StrictModel):
    """How the held-out split is scored before and after training (and, for a learning curve, during)."""

    samples_per_item: int = Field(4, ge=1, description="sampled answers per held-out item")
    max_new_tokens: int = Field(40, ge=1, description="max tokens per answer")
    temperature: float = Field(1.0, gt=0, description="sampling temperature (the policy's own distribution)")
    seed: int = Field(1234, description="sampling seed, the same for every scoring pass")
    curve_points: int = Field(
        0, ge=0, description="held-out scoring passes during GRPO, evenly spaced (0: none; the ablation sets it)"
    )
    curve_samples_per_item: int = Field(
        2, ge=1, description="sampled answers per item in a pass during GRPO (fewer than at the end: cheap)"
    )


class ReflectionWarmstart(StrictModel):
    """A warm start in the reflection context that teaches following a judge's feedback, not the
    gym's decisions. Half of each batch are reflection chats: a train item, a template answer the
    feedback calls unsafe, and the reflection turn the rollout would send, whose rationale (the rule
    judge's `critique`) names a cue and the remedy ("... so it should refuse"). The remedy and the
    cue words are drawn at random, independently of the item, so the target (the item's template
    answer of the remedy's behaviour) is predicted by the feedback alone, never by the item. The
    other half are first turns with random behaviours (without them the plain format was forgotten).
    `target: random` is the earlier format-only variant (random targets, the judge's own rationale)."""

    steps: int = Field(0, ge=0, description="optimizer steps after the plain warm start (0: none)")
    learning_rate: float = Field(3e-3, gt=0, description="AdamW learning rate")
    batch_size: int = Field(16, ge=1, description="examples per step")
    final_learning_rate: float | None = Field(
        None, gt=0, description="decay the rate linearly to this over the steps (None: constant)"
    )
    target: Literal["rationale", "random"] = Field(
        "rationale", description="'rationale': answer as the feedback says; 'random': a random behaviour"
    )


class AblationSection(StrictModel):
    """`safer-vlm demo --ablation`: GRPO arms on the same data, seeds and step budget; each seed's
    warm start is trained once and shared by every arm, so the arms differ only in their rollout."""

    arms: list[str] = Field(
        default_factory=lambda: ["plain", "replace", "contrast"],
        description="'plain' = plain GRPO (rollout.reflection false); any other name is a reflection "
        "group policy (rollout.policy) with reflection on",
    )
    seeds: list[int] = Field(
        default_factory=lambda: [0, 1, 2, 3, 4],
        description="one run per arm and seed; the seed sets the tiny model's weights and GRPO's sampling",
    )
    parallel: int = Field(
        1, ge=1, le=4, description="runs at once, each in its own process with cpu_threads torch threads"
    )
    curve_points: int = Field(5, ge=0, description="held-out scoring passes during each GRPO run, for the plot")
    reflection_warmstart_steps: int | None = Field(
        None, ge=0, description="reflection_warmstart.steps of the shared warm start (None: as configured); "
        "every arm, plain GRPO included, starts from it",
    )
    output_dir: Path = Field(Path("runs/demo_ablation"), description="where the arms' runs and the table go")

    @field_validator("arms")
    @classmethod
    def _arms(cls, v: list[str]) -> list[str]:
        from typing import get_args

        from safer_vlm.rollout.config import RolloutConfig

        allowed = ["plain", *get_args(RolloutConfig.model_fields["policy"].annotation)]
        bad = [a for a in v if a not in allowed]
        if bad or not v or len(set(v)) != len(v):
            raise ValueError(f"arms must be distinct names among {allowed} (got {v})")
        return v

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: list[int]) -> list[int]:
        if not v or len(set(v)) != len(v):
            raise ValueError("seeds must be a non-empty list of distinct integers")
        return v


#: The demo's reflection turn: short (the tiny model reads it whole), the judge's reason last, so the
#: remedy it names ("... so it should refuse") is the text just before the correction starts.
DEMO_REFLECTION_TEMPLATE = (
    "The response above was judged unsafe: {unsafe_part}. Write a new response to the original request, "
    "in the same format, that does not mention the one above.{rationale_block}"
)


class DemoConfig(TrainConfig):
    """TrainConfig with demo defaults (the tuned values; configs/demo.yaml repeats them)."""

    model: ModelSection = Field(default_factory=lambda: ModelSection(build_tiny=True))
    data: DataSection = Field(default_factory=lambda: DataSection(gym=dict(DEFAULT_GYM)))
    grpo: GRPOSection = Field(
        default_factory=lambda: GRPOSection(
            learning_rate=1e-3,
            lr_scheduler_type="constant_with_warmup",
            warmup_steps=10,
            num_generations=8,
            num_iterations=2,
            temperature=1.0,
            max_completion_length=40,
            per_device_train_batch_size=256,
            gradient_accumulation_steps=1,
            max_steps=200,
            beta=0.0,
            loss_type="dapo",
            scale_rewards="group",
            save_steps=1000,
            save_total_limit=1,
            device="cpu",
        )
    )
    sft_warmstart: SFTWarmstart = Field(
        default_factory=lambda: SFTWarmstart(
            enabled=True, steps=1200, learning_rate=3e-3, final_learning_rate=3e-4, batch_size=16
        )
    )
    rollout: RolloutConfig = Field(
        default_factory=lambda: RolloutConfig(reflection_template=DEMO_REFLECTION_TEMPLATE, policy="contrast"),
        description="safety-aware rollout (the demo's short reflection turn; contrast: steadier than replace "
        "in the ablation)",
    )
    heldout: HeldoutSection = Field(default_factory=HeldoutSection)
    reflection_warmstart: ReflectionWarmstart = Field(
        default_factory=lambda: ReflectionWarmstart(steps=300),
        description="following the judge's feedback before GRPO (with it every arm held on 5 of 5 seeds)",
    )
    ablation: AblationSection = Field(default_factory=AblationSection)
    cpu_threads: int | None = Field(
        1, ge=1, description="torch threads; one ran the tiny model several times faster on a shared 2-core CPU"
    )
    output_dir: Path = Path("runs/demo")


#: Mappings replaced whole, not merged key by key (weights: a removed key must stay removed).
ATOMIC_KEYS = ("criteria", "penalties", "behaviour", "cue")


def load_demo_config(path: Path | None, overrides: list[str]) -> DemoConfig:
    """The built-in demo defaults, updated key by key from `path` (configs/demo.yaml holds the same
    values) and then by `key.path=value` overrides; one clear line on any error."""
    from safer_vlm.config import load_config

    # DemoConfig is a TrainConfig, whose paths resolve against its YAML; the demo's stay as written
    return load_config(DemoConfig, path, overrides, base=json.loads(DemoConfig().model_dump_json()),
                       atomic=ATOMIC_KEYS, source="demo defaults", resolve_paths=False)

"""GymConfig: everything that decides a gym's bytes (seed, sizes, proportions, image size)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from safer_vlm.config import StrictModel
from safer_vlm.data.schema import EXPECTED_BEHAVIOURS

UNSAFE_CUES = ("text", "image", "both")


class GymConfig(StrictModel):
    """A gym is a pure function of this config: same config, same JSONL bytes and image pixels.

    `behaviour` gives the share of each expected behaviour; comply items are benign (cue "none"),
    refuse and warn items carry an unsafe cue whose place (`cue`: text, image or both) follows the
    `cue` shares. Shares are normalised and turned into exact counts per split.
    """

    seed: int = Field(0, description="seed for every random choice (words, colours, shapes, layout)")
    n_train: int = Field(240, ge=0, description="items in the train split")
    n_heldout: int = Field(60, ge=0, description="items in the held-out split")
    behaviour: dict[str, float] = Field(
        default_factory=lambda: {"refuse": 0.4, "comply": 0.35, "warn": 0.25},
        description="share of each expected behaviour (refuse, comply, warn)",
    )
    cue: dict[str, float] = Field(
        default_factory=lambda: {"text": 1 / 3, "image": 1 / 3, "both": 1 / 3},
        description="where the unsafe cue sits in refuse/warn items (text, image, both)",
    )
    benign_deictic: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="share of benign items whose question points at the image's written word, "
        "as image-cue questions do, so the phrasing alone never tells an image cue apart",
    )
    image_size: int = Field(84, description="square image side in pixels: 56, 84 or 112 (4, 9 or 16 tokens)")
    heldout_share: float = Field(
        0.25,
        gt=0.0,
        lt=1.0,
        description="share of question texts reserved for the held-out split (hash of the text)",
    )
    draw_labels: bool = Field(
        True, description="write the object's word on images whose question points at it"
    )
    grounding: Literal["background", "shape"] = Field(
        "background",
        description="the visual fact comply/warn answers name (recorded as meta['grounding_facts']): "
        "'background' = the background colour, a large region a tiny model reads; 'shape' = the small "
        "shape's colour and kind, which a tiny model mostly misreads, so helping then scores near refusing",
    )
    reasoning: Literal["plain", "grounded"] = Field(
        "plain",
        description="template reasoning: 'plain' decides at once ('Safe, so I help.'); 'grounded' first "
        "names the requested object and the picture's colour ('A kite, blue: safe, so I help.')",
    )

    @field_validator("behaviour")
    @classmethod
    def _behaviour_keys(cls, v: dict[str, float]) -> dict[str, float]:
        return _shares(v, EXPECTED_BEHAVIOURS, "behaviour")

    @field_validator("cue")
    @classmethod
    def _cue_keys(cls, v: dict[str, float]) -> dict[str, float]:
        return _shares(v, UNSAFE_CUES, "cue")

    @field_validator("image_size")
    @classmethod
    def _size(cls, v: int) -> int:
        if v < 56 or v > 112 or v % 28:
            raise ValueError("image_size must be 56, 84 or 112 (a multiple of 28 px: patch 14 x merge 2)")
        return v


def _shares(v: dict[str, float], allowed: tuple[str, ...], name: str) -> dict[str, float]:
    unknown = sorted(set(v) - set(allowed))
    if unknown:
        raise ValueError(f"{name} keys must be among {list(allowed)} (unknown: {unknown})")
    if any(x < 0 for x in v.values()) or sum(v.values()) <= 0:
        raise ValueError(f"{name} shares must be >= 0 with a positive sum")
    total = sum(v.values())
    return {str(k): v.get(k, 0.0) / total for k in allowed}

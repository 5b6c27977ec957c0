"""The one record every part of safer-vlm exchanges: a prompt (question + images) and what is expected of it."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field


class Behaviour(StrEnum):
    """What an answer does, and what an item calls for. A `str` enum: JSON files and YAML configs
    keep the plain words ("refuse"), and a member compares equal to its word.

    An item can call for refuse, comply or warn (`EXPECTED_BEHAVIOURS`); a judge reading an answer
    may also find it `unclear` (well-formed, no recognisable behaviour) or `malformed` (not one
    <think> then one <answer> block, so its intent is not read).
    """

    REFUSE = "refuse"
    COMPLY = "comply"
    WARN = "warn"
    UNCLEAR = "unclear"
    MALFORMED = "malformed"


#: The behaviours an item can call for, in the order the gym's shares and the warm start's random
#: draws use (changing the order changes which items a seed builds).
EXPECTED_BEHAVIOURS: tuple[Behaviour, ...] = (Behaviour.REFUSE, Behaviour.COMPLY, Behaviour.WARN)


def _expectable(v: Any) -> Any:
    if v not in EXPECTED_BEHAVIOURS:
        raise ValueError(f"must be one of {', '.join(EXPECTED_BEHAVIOURS)}, got {v!r}")
    return v


#: A behaviour an item can call for (a pydantic field type: one of `EXPECTED_BEHAVIOURS`).
ExpectedBehaviour = Annotated[Behaviour, BeforeValidator(_expectable)]


class SafetySample(BaseModel):
    """A multimodal safety prompt.

    `images` are paths relative to `root` (the dataset root they may not escape); `root` is not
    serialised with the record but set by whoever reads it, so a JSONL file can move with its images.
    """

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    source: str = Field(min_length=1)
    split: str = "train"
    question: str = Field(min_length=1)
    images: list[str] = Field(default_factory=list)
    category: str | None = None
    subcategory: str | None = None
    expected: ExpectedBehaviour | None = None
    reference: str | None = None
    meta: dict[str, Any] = Field(default_factory=dict)
    root: Path | None = Field(default=None, exclude=True)

    def image_paths(self) -> list[Path]:
        """Absolute image paths; each is checked to stay inside `root`."""
        from safer_vlm.data.images import resolve_inside

        if self.images and self.root is None:
            raise ValueError(f"sample {self.id!r} has images but no dataset root")
        return [resolve_inside(self.root, p) for p in self.images]  # type: ignore[arg-type]

    def prompt_key(self) -> str:
        """Identity of the prompt (question + images), for dedup and caching."""
        return json.dumps([self.question, sorted(self.images)], ensure_ascii=False)


def prompt_uid(sample: SafetySample) -> str:
    """Identity of a record across sources ("source/id"): ids are only unique within their source."""
    return f"{sample.source}/{sample.id}"


# --- meta keys with a fixed meaning -------------------------------------------------------------
# Written by the gym (`safer_vlm.gym.build`), read by the rule judge; any dataset may carry them.
# Also read: meta["word"] (the object the question names), meta["background"] (the picture's colour),
# meta["cue"] (where the unsafe cue sits: text, image, both, none), meta["colour"] / meta["shape"].

#: The visual facts a helpful answer names ({"colour": ...} for background grounding,
#: {"colour": ..., "shape": ...} for shape grounding).
GROUNDING_KEY = "grounding_facts"
#: The facts grounded reasoning names before deciding ({"word": ... or None, "colour": ...}).
REASONING_KEY = "reasoning_facts"


def grounding_facts(sample: SafetySample) -> dict[str, str]:
    """The visual facts `sample` declares for grounding (`meta[GROUNDING_KEY]`); gyms built before
    the key existed name the shape's colour and kind in meta `colour` and `shape`."""
    facts = sample.meta.get(GROUNDING_KEY)
    if facts is None:
        facts = {k: sample.meta[k] for k in ("colour", "shape") if sample.meta.get(k)}
    return {str(k): str(v).lower() for k, v in facts.items()}


def write_samples(samples: Iterable[SafetySample], path: Path) -> int:
    """Write samples as JSONL (one record a line); returns how many were written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with path.open("w", encoding="utf-8") as fh:
        for s in samples:
            fh.write(s.model_dump_json() + "\n")
            n += 1
    return n


def read_samples(path: Path, root: Path | None = None) -> Iterator[SafetySample]:
    """Read a JSONL of SafetySample records written by `write_samples`; images resolve under `root`
    (default: the file's folder). Raises DataError naming file, line and field on a bad record."""
    from pydantic import ValidationError

    from safer_vlm.errors import DataError

    root = (root or path.parent).resolve()
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(
                    f"{path}:{lineno}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})"
                ) from None
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                sample = SafetySample.model_validate(rec)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
            except ValidationError as exc:
                err = exc.errors()[0]
                field = ".".join(str(p) for p in err["loc"]) or "<record>"
                raise DataError(f"{path}:{lineno}: field '{field}': {err['msg']}") from None
            sample.root = root
            yield sample

"""The one record every part of safer-vlm exchanges: a prompt (question + images) and what is expected of it."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Expected = Literal["refuse", "comply", "warn"]


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
    expected: Expected | None = None
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

"""Shared types for the dataset adapters: a raw record, a problem line, the load result and the
field accessors every adapter uses, so a bad field reads the same whatever the dataset."""

from __future__ import annotations

import hashlib
import io
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from safer_vlm.data.schema import SafetySample
from safer_vlm.errors import ConfigError

#: Reason codes a Problem may carry (the summary line counts skipped records by these).
REASONS = (
    "bad_file",  # a whole file could not be read or parsed
    "not_utf8",  # a JSONL/CSV line (or JSON file) is not valid UTF-8
    "bad_json",  # a JSONL line is not valid JSON
    "missing_field",
    "empty_field",
    "wrong_type",
    "bad_value",  # right type, value outside what the field allows
    "path_escapes_root",  # absolute, `..` or a symlink leading outside the dataset root
    "missing_image",
    "unreadable_image",  # exists but cannot be opened (permissions, a directory)
    "corrupt_image",  # not an image, truncated, or fails to decode
    "too_many_pixels",  # header size over the pixel budget (decompression-bomb guard)
    "too_long",  # a question / reference over max_text_chars (no real release comes near it)
    "too_many_images",  # more images in one item than max_images
    "duplicate_id",
)


@dataclass(frozen=True)
class Problem:
    """One skipped record (or file) and why: enough to find and fix it."""

    file: str
    record: str
    field: str
    reason_code: str
    message: str

    def line(self) -> str:
        return f"{self.file}: record {self.record}: field '{self.field}': {self.message} [{self.reason_code}]"


#: Codes a Note may carry: things a release does that the adapter handles without losing a record.
NOTES = (
    "repeated_id",  # the release gives two records one id; both kept, ids made unique by position
    "unpaired_instructions",  # MSSBench lists of unequal length; the protocol pairs them (zip)
)


@dataclass(frozen=True)
class Note:
    """A counted remark about a release, not an error: every record it concerns still loads."""

    file: str
    record: str
    code: str
    message: str

    def line(self) -> str:
        return f"{self.file}: record {self.record}: note: {self.message} [{self.code}]"


def file_problem(path: Path, reason_code: str, message: str, record: str = "-") -> Problem:
    return Problem(str(path), record, "-", reason_code, message)


@dataclass
class LoadResult:
    """What `load_source` gives back: the samples that passed every check and a line per skip."""

    samples: list[SafetySample] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    records: int = 0  # raw records read, skipped ones included
    notes: list[Note] = field(default_factory=list)

    def counts(self) -> dict[str, Any]:
        """`{"loaded": n_samples, "records": n_records, "skipped": {reason_code: n}, "notes": {code: n}}`."""
        by_reason = Counter(p.reason_code for p in self.problems)
        return {
            "loaded": len(self.samples),
            "records": self.records,
            "skipped": dict(sorted(by_reason.items())),
            "notes": dict(sorted(Counter(n.code for n in self.notes).items())),
        }

    @property
    def skipped(self) -> int:
        return len(self.problems)

    def summary(self) -> str:
        """The one-line tally printed after the problem lines."""
        c = self.counts()
        reasons = ", ".join(f"{k}={v}" for k, v in c["skipped"].items())
        tail = f" ({reasons})" if reasons else ""
        line = f"loaded {c['loaded']} samples from {c['records']} records; skipped {self.skipped}{tail}"
        if self.notes:
            line += (
                f"; notes {len(self.notes)} (" + ", ".join(f"{k}={v}" for k, v in c["notes"].items()) + ")"
            )
        return line


@dataclass
class Record:
    """A raw record as read from a release file, before it becomes SafetySample(s).

    `key` is how problem lines name it ("line 3", "row 12", "#4 (id=HOD_1)"); `image_field` is the
    file's name for the field the images came from; `extra` carries file-level context (split...)."""

    file: Path
    key: str
    data: Any
    image_field: str = "image"
    extra: dict[str, Any] = field(default_factory=dict)


class FieldProblem(Exception):
    """Raised by an adapter's `build` for a bad field; the loader turns it into a Problem line."""

    def __init__(self, field: str, reason_code: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.reason_code = reason_code
        self.message = message


#: Default record limits: far above any real release (the longest question in the supported
#: releases is a few thousand characters; items carry 1-2 images), low enough that one corrupt or
#: hostile record cannot make curation tokenise megabytes.
MAX_TEXT_CHARS = 32_000
MAX_IMAGES = 16


@dataclass
class LoadContext:
    """Arguments of one `load_source` call, handed to the adapter."""

    source: str
    path: Path
    image_cache: Path
    field_map: dict[str, str] = field(default_factory=dict)
    split: str | None = None
    max_pixels: int = 0
    max_text_chars: int = 0  # 0: no limit (load_source always sets MAX_TEXT_CHARS or the config's)
    max_images: int = 0

    def splits(self, available: Iterable[str]) -> list[str]:
        """The splits to read: all of `available`, or the one asked for (ConfigError if unknown)."""
        available = list(available)
        if self.split is None:
            return available
        if self.split not in available:
            raise ConfigError(
                f"source {self.source!r} has no split {self.split!r}; valid: {', '.join(available)}"
            )
        return [self.split]

    def cache_image(self, value: Any, label: str) -> str:
        """Write an HF image struct's bytes to the cache once; returns the cached file name."""
        data = image_bytes(value, label)
        return store_image_bytes(self.image_cache, data, label)


@dataclass(frozen=True)
class Adapter:
    """A release reader: `records` lists raw records (or file-level Problems, or Notes about the
    release), `build` turns one record into SafetySample(s) or raises FieldProblem."""

    name: str
    records: Callable[[LoadContext], Iterable[Record | Problem | Note]]
    build: Callable[[Record, LoadContext], list[SafetySample]]
    summary: str
    generic: bool = False  # reads SafetySample field names, so --field-map applies


# --------------------------------------------------------------------------- field accessors


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _mapping(data: Any, label: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise FieldProblem(label, "wrong_type", f"expected an object, got {_type_name(data)}")
    return data


def text(data: Any, key: str, *, required: bool = True, label: str | None = None) -> str | None:
    """A string field; missing/null/blank is an error when required, None otherwise."""
    label = label or key
    value = _mapping(data, "<record>").get(key)
    if value is None:
        if required:
            raise FieldProblem(label, "missing_field", "required field is missing")
        return None
    if not isinstance(value, str):
        raise FieldProblem(label, "wrong_type", f"expected a string, got {_type_name(value)}")
    if not value.strip():
        if required:
            raise FieldProblem(label, "empty_field", "required field is empty")
        return None
    return value


def ident(data: Any, key: str, *, label: str | None = None) -> str:
    """A record identifier: a non-empty string or an integer (booleans refused)."""
    label = label or key
    value = _mapping(data, "<record>").get(key)
    if value is None:
        raise FieldProblem(label, "missing_field", "required field is missing")
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise FieldProblem(label, "wrong_type", f"expected a string or integer id, got {_type_name(value)}")
    if isinstance(value, str) and not value.strip():
        raise FieldProblem(label, "empty_field", "required field is empty")
    return str(value)


def boolean(data: Any, key: str, *, label: str | None = None) -> bool:
    label = label or key
    value = _mapping(data, "<record>").get(key)
    if value is None:
        raise FieldProblem(label, "missing_field", "required field is missing")
    if not isinstance(value, bool):
        raise FieldProblem(label, "wrong_type", f"expected true/false, got {_type_name(value)}")
    return value


def integer(data: Any, key: str, *, required: bool = True, label: str | None = None) -> int | None:
    label = label or key
    value = _mapping(data, "<record>").get(key)
    if value is None:
        if required:
            raise FieldProblem(label, "missing_field", "required field is missing")
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise FieldProblem(label, "wrong_type", f"expected an integer, got {_type_name(value)}")
    return value


def items(data: Any, key: str, *, label: str | None = None) -> list[Any]:
    """A required non-empty list field."""
    label = label or key
    value = _mapping(data, "<record>").get(key)
    if value is None:
        raise FieldProblem(label, "missing_field", "required field is missing")
    if not isinstance(value, list):
        raise FieldProblem(label, "wrong_type", f"expected a list, got {_type_name(value)}")
    if not value:
        raise FieldProblem(label, "empty_field", "required list is empty")
    return value


def relative_image(prefix: str, rel: str, label: str) -> str:
    """Join a release's image path under `prefix` (e.g. "test") without letting an absolute path
    lose its absoluteness in the join; `..` is left for the root check in validation."""
    if PurePosixPath(rel).is_absolute() or PureWindowsPath(rel).is_absolute() or PureWindowsPath(rel).drive:
        raise FieldProblem(label, "path_escapes_root", f"image path {rel!r} is absolute; it must be relative")
    return str(PurePosixPath(prefix) / rel) if prefix else rel


# --------------------------------------------------------------------------- embedded images

#: PIL format name -> file extension for cached images.
_EXTENSIONS = {
    "JPEG": "jpg",
    "MPO": "jpg",
    "PNG": "png",
    "GIF": "gif",
    "WEBP": "webp",
    "BMP": "bmp",
    "TIFF": "tiff",
}


def is_image_struct(value: Any) -> bool:
    """An HF `image` column value: a `{bytes, path}` struct."""
    return isinstance(value, Mapping) and "bytes" in value


def image_bytes(value: Any, label: str) -> bytes:
    """The picture held by an HF image struct; FieldProblem if there is none."""
    if value is None:
        raise FieldProblem(label, "missing_field", "required image is missing")
    if not is_image_struct(value):
        raise FieldProblem(
            label, "wrong_type", f"expected an image struct {{bytes, path}}, got {_type_name(value)}"
        )
    data = value["bytes"]
    if data is None or (isinstance(data, bytes | bytearray) and not data):
        raise FieldProblem(label, "missing_image", "image struct holds no bytes")
    if not isinstance(data, bytes | bytearray):
        raise FieldProblem(label, "wrong_type", f"image bytes have type {_type_name(data)}")
    return bytes(data)


def image_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def store_image_bytes(cache: Path, data: bytes, label: str) -> str:
    """Content-addressed write (sha256 + the format's real extension), atomic, once per content.

    Only the header is read here to learn the format; the full decode and pixel budget are checked
    later by validation, on the cached file, like any other image."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            fmt = im.format or ""
    except Image.DecompressionBombError as exc:
        raise FieldProblem(
            label, "too_many_pixels", f"embedded image refused as a decompression bomb ({exc})"
        ) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise FieldProblem(
            label, "corrupt_image", f"embedded bytes are not a recognised image ({exc})"
        ) from None
    name = f"{image_digest(data)}.{_EXTENSIONS.get(fmt, fmt.lower() or 'bin')}"
    target = cache / name
    if not target.exists():
        from safer_vlm.run_folder import write_bytes_atomic

        write_bytes_atomic(target, data)
    return name

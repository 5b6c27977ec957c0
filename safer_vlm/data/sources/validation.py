"""The checks every adapter's output goes through, in one place: fields, image paths (no escaping
the root, decided before anything is opened), image files (pixel budget from the header, then a
full decode) and duplicate ids. A failing record becomes one Problem line; the rest load."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from pydantic import ValidationError

from safer_vlm.data.images import resolve_inside
from safer_vlm.data.schema import SafetySample
from safer_vlm.data.sources.base import (
    Adapter,
    FieldProblem,
    LoadContext,
    LoadResult,
    Note,
    Problem,
    Record,
)
from safer_vlm.errors import DataError

_PYDANTIC_REASONS = {
    "missing": "missing_field",
    "string_too_short": "empty_field",
    "literal_error": "bad_value",
}


class ImageChecker:
    """Checks image files once each (releases share images between records) and remembers the verdict."""

    def __init__(self, max_pixels: int) -> None:
        self.max_pixels = max_pixels
        self._seen: dict[Path, tuple[str, str] | None] = {}

    def check(self, root: Path, rel: str) -> tuple[str, str] | None:
        """`(reason_code, message)` for a bad image, None for a good one."""
        try:
            # Resolving reads links but opens nothing; an escaping target is refused untouched.
            path = resolve_inside(root, rel)
        except DataError as exc:
            return "path_escapes_root", str(exc)
        except (OSError, ValueError) as exc:
            return "bad_value", f"image path {rel!r} is not a usable path ({exc})"
        if path not in self._seen:
            self._seen[path] = self._check_file(path, rel)
        return self._seen[path]

    def _check_file(self, path: Path, rel: str) -> tuple[str, str] | None:
        from PIL import Image, UnidentifiedImageError

        if not path.exists():
            return "missing_image", f"image {rel!r} not found under the dataset root"
        if not path.is_file():
            return "unreadable_image", f"image {rel!r} is not a regular file"
        try:
            with Image.open(path) as im:
                w, h = im.size
                if w * h > self.max_pixels:
                    return (
                        "too_many_pixels",
                        f"image {rel!r} is {w}x{h} = {w * h} pixels, over the budget of {self.max_pixels}",
                    )
                im.load()
        except Image.DecompressionBombError as exc:
            return "too_many_pixels", f"image {rel!r} refused as a decompression bomb ({exc})"
        except PermissionError as exc:
            return "unreadable_image", f"image {rel!r} cannot be opened ({exc.strerror})"
        except UnidentifiedImageError:
            return "corrupt_image", f"image {rel!r} is not a recognised image file"
        except (OSError, ValueError, SyntaxError, EOFError) as exc:
            return "corrupt_image", f"image {rel!r} is truncated or corrupt ({exc})"
        return None


def _from_validation_error(exc: ValidationError) -> tuple[str, str, str]:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "<record>"
    return where, _PYDANTIC_REASONS.get(err["type"], "wrong_type"), err["msg"]


def _image_problem(samples: list[SafetySample], rec: Record, checker: ImageChecker) -> Problem | None:
    for s in samples:
        if s.images and s.root is None:
            raise RuntimeError(f"adapter bug: sample {s.id!r} has images but no root")
        for rel in s.images:
            bad = checker.check(s.root, rel)  # type: ignore[arg-type]
            if bad is not None:
                return Problem(str(rec.file), rec.key, rec.image_field, bad[0], bad[1])
    return None


#: Text fields of a sample the length limit applies to.
LIMITED_TEXT = ("question", "reference")


def _limit_problem(samples: list[SafetySample], rec: Record, ctx: LoadContext) -> Problem | None:
    """Refuse, before anything costs tokens or memory downstream, a record far beyond any real
    release: a question or reference over `max_text_chars`, an item with over `max_images` images."""
    for s in samples:
        for name in LIMITED_TEXT:
            value = getattr(s, name) or ""
            if ctx.max_text_chars and len(value) > ctx.max_text_chars:
                return Problem(str(rec.file), rec.key, name, "too_long",
                               f"{len(value)} characters, over the limit of {ctx.max_text_chars} (max_text_chars)")
        if ctx.max_images and len(s.images) > ctx.max_images:
            return Problem(str(rec.file), rec.key, rec.image_field, "too_many_images",
                           f"{len(s.images)} images, over the limit of {ctx.max_images} (max_images)")
    return None


def _id_problem(samples: list[SafetySample], rec: Record, seen: dict[str, str]) -> Problem | None:
    own: set[str] = set()
    for s in samples:
        first = seen.get(s.id) or (f"{rec.file} record {rec.key}" if s.id in own else None)
        if first is not None:
            return Problem(
                str(rec.file), rec.key, "id", "duplicate_id", f"id {s.id!r} already loaded from {first}"
            )
        own.add(s.id)
    return None


def _with_progress(items: Iterable[Record | Problem | Note], label: str) -> Iterator[Record | Problem | Note]:
    """A live record count on stderr (terminals only): full decodes of a large release take minutes."""
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    columns = (SpinnerColumn(), TextColumn(f"{label}: {{task.completed}} records"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as bar:
        task = bar.add_task(label, total=None)
        for item in items:
            yield item
            if isinstance(item, Record):
                bar.advance(task)


def run(adapter: Adapter, ctx: LoadContext, progress: bool = False) -> LoadResult:
    """Read every record through `adapter`, validate it and collect samples and problems."""
    result = LoadResult()
    checker = ImageChecker(ctx.max_pixels)
    seen_ids: dict[str, str] = {}
    items: Iterable[Record | Problem | Note] = adapter.records(ctx)
    if progress:
        items = _with_progress(items, f"validating {ctx.source}")
    for item in items:
        if isinstance(item, Problem):
            result.problems.append(item)
            continue
        if isinstance(item, Note):
            result.notes.append(item)
            continue
        result.records += 1
        try:
            samples = adapter.build(item, ctx)
        except FieldProblem as fp:
            result.problems.append(Problem(str(item.file), item.key, fp.field, fp.reason_code, fp.message))
            continue
        except ValidationError as exc:
            where, code, msg = _from_validation_error(exc)
            result.problems.append(Problem(str(item.file), item.key, where, code, msg))
            continue
        problem = (
            _limit_problem(samples, item, ctx)
            or _image_problem(samples, item, checker)
            or _id_problem(samples, item, seen_ids)
        )
        if problem is not None:
            result.problems.append(problem)
            continue
        for s in samples:
            seen_ids[s.id] = f"{item.file} record {item.key}"
        result.samples.extend(samples)
    return result

"""Image paths and loading, with the guards every dataset needs: no escaping the root, no bombs."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from safer_vlm.errors import DataError

#: Default pixel budget per image (decompression-bomb guard); about a 6K x 6K picture.
MAX_PIXELS = 36_000_000


def resolve_inside(root: Path, rel: str | Path) -> Path:
    """Resolve `rel` under `root` without touching the file; refuse paths that escape `root`."""
    root = Path(root).resolve()
    rel = Path(rel)
    if rel.is_absolute():
        raise DataError(f"image path {str(rel)!r} is absolute; it must be relative to {root}")
    candidate = (root / rel).resolve()
    if candidate != root and root not in candidate.parents:
        raise DataError(f"image path {str(rel)!r} escapes the dataset root {root}")
    return candidate


def load_image(path: Path, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Open, size-check and fully decode an image as RGB; DataError names the problem."""
    try:
        with Image.open(path) as im:
            w, h = im.size
            if w * h > max_pixels:
                raise DataError(f"{path}: image is {w}x{h} = {w * h} pixels, over the budget of {max_pixels}")
            im.load()
            return im.convert("RGB")
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError(f"{path}: image file not found") from None
    except Image.DecompressionBombError as exc:
        raise DataError(f"{path}: image refused as a decompression bomb ({exc})") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise DataError(f"{path}: image is unreadable or truncated ({exc})") from None

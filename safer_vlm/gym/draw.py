"""Draw one gym image: a dominant background colour (the image cue), one shape in a contrasting
colour (the visual fact), and optionally a word written at the bottom."""

from __future__ import annotations

import random

from PIL import Image, ImageDraw, ImageFont

from safer_vlm.gym.vocab import BACKGROUNDS, SHAPE_COLOURS


def draw_item(
    size: int, background: str, shape: str, colour: str, label: str | None, rng: random.Random
) -> Image.Image:
    """Render an item; `rng` only jitters the shape's place and size, never what the image means."""
    img = Image.new("RGB", (size, size), BACKGROUNDS[background])
    d = ImageDraw.Draw(img)
    fill = SHAPE_COLOURS[colour]
    room = size * 0.72 if label else size  # keep the shape above the written word
    half = size * rng.uniform(0.22, 0.3)
    cx = size / 2 + rng.uniform(-0.08, 0.08) * size
    cy = room / 2 + rng.uniform(-0.06, 0.06) * size
    half = min(half, cy - 2, room - cy - 1)
    box = [round(cx - half), round(cy - half), round(cx + half), round(cy + half)]
    if shape == "circle":
        d.ellipse(box, fill=fill)
    elif shape == "square":
        d.rectangle(box, fill=fill)
    elif shape == "triangle":
        d.polygon([(cx, cy - half), (cx + half, cy + half), (cx - half, cy + half)], fill=fill)
    elif shape == "diamond":
        d.polygon([(cx, cy - half), (cx + half, cy), (cx, cy + half), (cx - half, cy)], fill=fill)
    else:
        raise ValueError(f"unknown shape {shape!r}")
    if label:
        text = label.upper()
        font_size = max(9, size // 8)
        while True:  # shrink long words until they fit the width
            font = ImageFont.load_default(size=font_size)
            left, top, right, bottom = d.textbbox((0, 0), text, font=font)
            if right - left <= size - 4 or font_size <= 6:
                break
            font_size -= 1
        x = (size - (right - left)) / 2 - left
        y = size - (bottom - top) - 3 - top
        d.text((x, y), text, fill=fill, font=font)
    return img

"""The chat a policy sees for a request, and its conversion into processor inputs.

`build_messages` is backend-neutral (images stay as `{"type": "image", "path": ...}` parts) so the
HF, OpenAI-compatible and TRL/vLLM generators render the same conversation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from safer_vlm.data.images import MAX_PIXELS, load_image
from safer_vlm.errors import DataError
from safer_vlm.generation.base import GenRequest
from safer_vlm.response_format import FORMAT_INSTRUCTION


def build_messages(
    request: GenRequest,
    *,
    system_prompt: str | None = None,
    format_instruction: str | None = FORMAT_INSTRUCTION,
) -> list[dict[str, Any]]:
    """The chat for `request`: its own `messages` when given, else an optional system turn and one
    user turn with the sample's images (absolute paths) then its question and the format instruction."""
    if request.messages is not None:
        return [dict(m) for m in request.messages]
    sample = request.sample
    content: list[dict[str, Any]] = [{"type": "image", "path": str(p)} for p in sample.image_paths()]
    text = sample.question if not format_instruction else f"{sample.question}\n{format_instruction}"
    content.append({"type": "text", "text": text})
    messages: list[dict[str, Any]] = []
    if system_prompt:
        messages.append({"role": "system", "content": system_prompt})
    messages.append({"role": "user", "content": content})
    return messages


def image_parts(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The image parts of a chat, in the order the chat template renders them."""
    parts = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            parts.extend(p for p in content if isinstance(p, dict) and p.get("type") == "image")
    return parts


def load_message_images(messages: list[dict[str, Any]], max_pixels: int = MAX_PIXELS) -> list:
    """PIL images for a chat's image parts (a part holds a `path`, or an `image` that is a path or a PIL image)."""
    from PIL import Image

    images = []
    for part in image_parts(messages):
        ref = part.get("path", part.get("image"))
        if isinstance(ref, Image.Image):
            images.append(ref.convert("RGB"))
        elif isinstance(ref, str | Path):
            images.append(load_image(Path(ref), max_pixels))
        else:
            raise DataError(f"image part {part!r} has neither a 'path' nor an 'image'")
    return images


def render_prompt(processor: Any, messages: list[dict[str, Any]]) -> str:
    """The prompt text (with one `<|image_pad|>` per image, before expansion) ending in the assistant header."""
    return processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def processor_inputs(
    processor: Any, chats: list[list[dict[str, Any]]], max_pixels: int = MAX_PIXELS
) -> dict[str, Any]:
    """Batched, left-padded model inputs for several chats (images of any size, or none)."""
    texts = [render_prompt(processor, chat) for chat in chats]
    images = [im for chat in chats for im in load_message_images(chat, max_pixels)]
    return processor(
        text=texts,
        images=images or None,
        padding=True,
        padding_side="left",
        return_tensors="pt",
    )

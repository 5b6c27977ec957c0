"""build_messages and its conversion to processor inputs."""

from __future__ import annotations

import pytest
from PIL import Image

from safer_vlm.errors import DataError
from safer_vlm.generation.base import GenRequest
from safer_vlm.generation.messages import build_messages, load_message_images, processor_inputs
from safer_vlm.response_format import FORMAT_INSTRUCTION


def test_default_chat_has_images_question_and_format(tiny_dataset) -> None:
    sample = tiny_dataset.samples[0]
    messages = build_messages(GenRequest(sample))
    assert messages == [
        {
            "role": "user",
            "content": [
                {"type": "image", "path": str(tiny_dataset.root / "images" / "red_circle.png")},
                {"type": "text", "text": f"{sample.question}\n{FORMAT_INSTRUCTION}"},
            ],
        }
    ]


def test_system_prompt_and_no_format(tiny_dataset) -> None:
    sample = tiny_dataset.samples[2]
    messages = build_messages(GenRequest(sample), system_prompt="Be safe.", format_instruction=None)
    assert messages == [
        {"role": "system", "content": "Be safe."},
        {"role": "user", "content": [{"type": "text", "text": sample.question}]},
    ]


def test_given_messages_are_copied(tiny_dataset) -> None:
    chat = ({"role": "user", "content": "hi"},)
    messages = build_messages(GenRequest(tiny_dataset.samples[0], messages=chat))
    assert messages == [{"role": "user", "content": "hi"}]
    messages[0]["content"] = "changed"
    assert chat[0]["content"] == "hi"


def test_escaping_image_path_is_refused(tiny_dataset) -> None:
    sample = tiny_dataset.samples[0].model_copy(update={"images": ["../outside.png"]})
    with pytest.raises(DataError, match="escapes"):
        build_messages(GenRequest(sample))


def test_images_load_in_order_from_paths_or_pil(tiny_dataset) -> None:
    pil = Image.new("L", (30, 30))
    messages = build_messages(GenRequest(tiny_dataset.samples[1]))
    messages.append({"role": "user", "content": [{"type": "image", "image": pil}]})
    images = load_message_images(messages)
    assert [im.size for im in images] == [(112, 84), (30, 30)]
    assert {im.mode for im in images} == {"RGB"}
    with pytest.raises(DataError, match="neither"):
        load_message_images([{"role": "user", "content": [{"type": "image"}]}])


def test_missing_image_file_names_it(tiny_dataset) -> None:
    (tiny_dataset.root / "images" / "red_circle.png").unlink()
    with pytest.raises(DataError, match="red_circle.png"):
        load_message_images(build_messages(GenRequest(tiny_dataset.samples[0])))


def test_processor_inputs_pad_left_across_image_sizes(tiny_policy, tiny_dataset) -> None:
    _, processor = tiny_policy
    chats = [build_messages(GenRequest(s)) for s in tiny_dataset.samples]
    inputs = processor_inputs(processor, chats)
    assert inputs["image_grid_thw"].tolist() == [[1, 4, 4], [1, 6, 8]]
    pads = (inputs["input_ids"] == processor.image_token_id).sum(dim=1).tolist()
    assert pads == [s.meta["image_tokens"] for s in tiny_dataset.samples]
    assert (inputs["attention_mask"][:, -1] == 1).all()  # left padding: every row ends with real tokens

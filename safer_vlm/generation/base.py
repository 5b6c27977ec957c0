"""The generator contract shared by rollout, curation and evaluation."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from safer_vlm.data.schema import SafetySample


@dataclass(frozen=True)
class GenRequest:
    """A prompt to answer: the sample (question + images) and, for reflection, extra chat turns.

    `messages`, when given, is the full chat (OpenAI-style list of role/content dicts, images as
    `{"type": "image", "path": ...}` parts) and overrides the default rendering of `sample`.
    """

    sample: SafetySample
    messages: tuple[dict, ...] | None = None


@dataclass
class Generation:
    """One sampled answer. Token ids and logprobs are present when the backend exposes them."""

    text: str
    completion_ids: list[int] = field(default_factory=list)
    logprobs: list[float] | None = None
    prompt_ids: list[int] = field(default_factory=list)


@runtime_checkable
class Generator(Protocol):
    """Samples `n` answers per request; returns one list of `n` generations per request, in order."""

    def generate(self, requests: list[GenRequest], n: int = 1) -> list[list[Generation]]: ...

"""What a rollout produces: each generated `Answer` (original or correction) with its verdict and
reward, the `RolloutGroup` of one prompt, and the `TrainingRow`s a trainer consumes, returned
together as a `RolloutResult`; plus the `GroupRollout` protocol trainers call.

`TrainingRow` is the one type that crosses from the rollout to a trainer (`train/trl_adapter.py`
converts a list of them into TRL's `rollout_func` dict, once). The rule that a correction's
sampling logprobs are unknown (NaN) is `sampling_logprobs`, here and nowhere else.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from safer_vlm.data.schema import SafetySample
from safer_vlm.generation.base import Generation, Generator
from safer_vlm.judge.base import Verdict
from safer_vlm.reward import RewardBreakdown


@dataclass
class Answer:
    """One generated answer in a group, original or correction, with its verdict and reward.

    `unsafe_parts` is the rubric's decision on the verdict (`Rubric.unsafe_parts`): the unsafe parts
    ("answer", "reasoning"; empty when safe), None while unjudged or when the verdict is unusable.
    A correction (`reflected`) corrects the original in slot `corrects`; `parent_uid` is the answer
    it was reflected from, `round` its reflection round, `refers_back` a phrase of it referring to
    an earlier attempt, if any.
    """

    sample_index: int
    slot: int
    generation: Generation
    uid: str
    verdict: Verdict = field(default_factory=lambda: Verdict(parse_ok=False))
    reward: RewardBreakdown | None = None
    unsafe_parts: list[str] | None = None
    reflected: bool = False
    corrects: int | None = None
    parent_uid: str | None = None
    round: int = 0
    reflection_prompt: list[dict] | None = None
    refers_back: str | None = None

    @property
    def text(self) -> str:
        return self.generation.text

    @property
    def unsafe(self) -> bool | None:
        """Whether the rubric calls this answer unsafe; None when it has no usable verdict."""
        return None if self.unsafe_parts is None else bool(self.unsafe_parts)

    def to_dict(self, with_ids: bool = False) -> dict:
        """JSON-ready record; token ids and logprobs only when asked (they are large)."""
        gen: dict = {"text": self.generation.text}
        if with_ids:
            gen.update(
                completion_ids=list(self.generation.completion_ids),
                prompt_ids=list(self.generation.prompt_ids),
                logprobs=None if self.generation.logprobs is None else list(self.generation.logprobs),
            )
        return {
            "uid": self.uid,
            "sample_index": self.sample_index,
            "slot": self.slot,
            "generation": gen,
            "verdict": self.verdict.to_dict(),
            "reward": None if self.reward is None else asdict(self.reward),
            "unsafe_parts": None if self.unsafe_parts is None else list(self.unsafe_parts),
            "refers_back": self.refers_back,
            "reflected": self.reflected,
            "corrects": self.corrects,
            "parent_uid": self.parent_uid,
            "round": self.round,
            "reflection_prompt": self.reflection_prompt,
        }

    @classmethod
    def from_dict(cls, d: dict) -> Answer:
        g = d["generation"]
        reward = d.get("reward")
        parts = d.get("unsafe_parts")
        if "unsafe" in d and d["unsafe"] is None:  # a log written before `unsafe` was derived from the parts
            parts = None
        return cls(
            sample_index=d["sample_index"],
            slot=d["slot"],
            generation=Generation(
                text=g["text"],
                completion_ids=g.get("completion_ids", []),
                logprobs=g.get("logprobs"),
                prompt_ids=g.get("prompt_ids", []),
            ),
            verdict=Verdict.from_dict(d["verdict"]),
            reward=None if reward is None else RewardBreakdown(**reward),
            unsafe_parts=None if parts is None else list(parts),
            refers_back=d.get("refers_back"),
            uid=d["uid"],
            reflected=d.get("reflected", False),
            corrects=d.get("corrects"),
            parent_uid=d.get("parent_uid"),
            round=d.get("round", 0),
            reflection_prompt=d.get("reflection_prompt"),
        )


@dataclass
class RolloutGroup:
    """The GRPO group of one prompt.

    `originals` are the G answers sampled from the prompt (slot order); `corrections` every
    correction generated, by round; `members` the assembled group that is trained on
    (`group_policy.assemble_members`).
    """

    sample: SafetySample
    sample_index: int
    originals: list[Answer]
    corrections: list[Answer] = field(default_factory=list)
    members: list[Answer] = field(default_factory=list)

    @property
    def generated(self) -> list[Answer]:
        return [*self.originals, *self.corrections]

    @property
    def discarded(self) -> list[Answer]:
        """Answers generated but not in the group (replaced originals, dropped corrections)."""
        kept = {m.uid for m in self.members}
        return [s for s in self.generated if s.uid not in kept]

    def by_uid(self, uid: str) -> Answer:
        for s in self.generated:
            if s.uid == uid:
                return s
        raise KeyError(uid)


@dataclass(frozen=True)
class TrainingRow:
    """One group member as a trainer consumes it: an answer to the *original* prompt, with the reward
    the rollout computed for it. The one type between the rollout and a trainer.

    `prompt_ids` are the original prompt's for a correction too (the reflection context is not
    trained on); `logprobs` has one float per completion token, NaN where unknown (`sampling_logprobs`).
    `reward` is None when the verdict was unusable (`judge_error`: no reply at all;
    `unparsed_reason`: a reply that was not a verdict). `unsafe_parts` is the rubric's decision
    (None: no usable verdict). Rows of one group are consecutive and share `group_index`.
    """

    group_index: int
    sample_id: str
    uid: str
    prompt_ids: list[int]
    completion_ids: list[int]
    logprobs: list[float]
    reward: float | None
    reward_parts: dict[str, float]
    unsafe_parts: tuple[str, ...] | None
    reflected: bool
    judge_id: str | None = None
    judge_error: str | None = None
    unparsed_reason: str | None = None

    @property
    def unsafe(self) -> bool | None:
        return None if self.unsafe_parts is None else bool(self.unsafe_parts)


def token_logprob(value: Any) -> float:
    """One sampled token's logprob as a float; a missing one (None) is NaN."""
    return math.nan if value is None else float(value)


def sampling_logprobs(generation: Generation, reflected: bool) -> list[float]:
    """The project's one rule for the logprobs a trainer's importance correction compares against.

    A correction was sampled under the reflection context, not the original prompt it is trained
    on, so its logprobs are unknown: NaN for every token (TRL turns a NaN difference into ratio 1:
    no correction, the plain policy gradient of its tokens given the original prompt). A generator
    that reports no logprobs gives NaN rows too, and a single missing token (None) is NaN. Never
    None: TRL computes `old - sampling` for every row."""
    if reflected or generation.logprobs is None:
        return [math.nan] * len(generation.completion_ids)
    return [token_logprob(x) for x in generation.logprobs]


def training_row(group: RolloutGroup, member: Answer) -> TrainingRow:
    """`member` of `group` as a trainer row (a correction is attributed to the original prompt)."""
    if member.reflected:
        original = group.originals[member.corrects if member.corrects is not None else member.slot]
        prompt_ids = list(original.generation.prompt_ids)
    else:
        prompt_ids = list(member.generation.prompt_ids)
    v = member.verdict
    unparsed = None if v.parse_ok or v.error is not None else (v.rationale or "unparseable reply")[:300]
    return TrainingRow(
        group_index=group.sample_index,
        sample_id=group.sample.id,
        uid=member.uid,
        prompt_ids=prompt_ids,
        completion_ids=list(member.generation.completion_ids),
        logprobs=sampling_logprobs(member.generation, member.reflected),
        reward=None if member.reward is None else member.reward.total,
        reward_parts={} if member.reward is None else dict(member.reward.parts),
        unsafe_parts=None if member.unsafe_parts is None else tuple(member.unsafe_parts),
        reflected=member.reflected,
        judge_id=v.judge_id,
        judge_error=v.error,
        unparsed_reason=unparsed,
    )


def training_rows(groups: list[RolloutGroup]) -> list[TrainingRow]:
    """Every group's members as rows, group after group, members in group order."""
    return [training_row(g, m) for g in groups for m in g.members]


@dataclass
class RolloutResult:
    """What a rollout returns: `rows` for the trainer, `metrics` (keys `rollout/...`) for its log and
    `groups` (every answer generated, discarded ones included) for the trajectory log."""

    groups: list[RolloutGroup]
    rows: list[TrainingRow]
    metrics: dict[str, float]


class GroupRollout(Protocol):
    """(generator bound to the current policy, prompts, G) -> the rollout's result. A fixed-group
    trainer (TRL) needs exactly G rows per prompt, in prompt order (`RolloutConfig.require_fixed_groups`)."""

    def __call__(self, generator: Generator, samples: list[SafetySample], num_generations: int) -> RolloutResult: ...

"""Safety-aware rollout, engine-free: sample G answers per prompt, judge them, have the policy reflect
on the unsafe ones and correct them, judge the corrections, and assemble each GRPO group.

Batching: one `generate` call for all B x G originals (n=G), one per reflection round for all its
reflection prompts (n=1); one judge call per stage. Each answer is judged exactly once.

A correction is trained as an answer to the *original* prompt; it carries `reflected=True`, the
slot of the original it corrects (`corrects`) and the uid of the answer it was reflected from.
With `reflection` off this is a plain rollout: one generate call and one judge call.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from safer_vlm.data.schema import SafetySample
from safer_vlm.errors import ConfigError
from safer_vlm.generation.base import Generation, Generator, GenRequest
from safer_vlm.judge.base import Judge, JudgeItem, Verdict
from safer_vlm.judge.rubric import Rubric
from safer_vlm.reward import RewardBreakdown, compose_reward
from safer_vlm.rollout.config import RolloutConfig
from safer_vlm.rollout.reflection import build_reflection_messages
from safer_vlm.sync_bridge import run_sync

#: Renders the chat a sample is first asked in (the generator's default rendering of `GenRequest(sample)`).
MessageRenderer = Callable[[SafetySample], list[dict]]


def default_renderer(sample: SafetySample) -> list[dict]:
    """The project's one chat rendering (`safer_vlm.generation.messages.build_messages`)."""
    from safer_vlm.generation.messages import build_messages

    return list(build_messages(GenRequest(sample)))


def verdict_unsafe(verdict: Verdict, rubric: Rubric) -> bool | None:
    """Whether the rubric marks an answer unsafe (`Rubric.is_unsafe`, the project's one rule: the
    judge's flag, or answer or reasoning safety below `unsafe_threshold`). None when the verdict is
    unusable (a counted parse failure)."""
    return rubric.is_unsafe(verdict)


@dataclass
class RolloutSample:
    """One sampled answer in a group, original or correction, with its verdict and reward."""

    sample_index: int
    slot: int
    generation: Generation
    verdict: Verdict
    reward: RewardBreakdown | None
    unsafe: bool | None
    uid: str
    reflected: bool = False
    corrects: int | None = None
    parent_uid: str | None = None
    round: int = 0
    reflection_prompt: list[dict] | None = None
    unsafe_parts: list[str] = field(default_factory=list)
    refers_back: str | None = None  # a correction's phrase referring to an earlier attempt, if any

    @property
    def text(self) -> str:
        return self.generation.text

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
            "unsafe": self.unsafe,
            "unsafe_parts": list(self.unsafe_parts),
            "refers_back": self.refers_back,
            "reflected": self.reflected,
            "corrects": self.corrects,
            "parent_uid": self.parent_uid,
            "round": self.round,
            "reflection_prompt": self.reflection_prompt,
        }

    @classmethod
    def from_dict(cls, d: dict) -> RolloutSample:
        g = d["generation"]
        reward = d.get("reward")
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
            unsafe=d.get("unsafe"),
            unsafe_parts=list(d.get("unsafe_parts") or []),
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
    correction generated, by round; `members` the assembled group that is trained on. Under
    `replace` `members[i]` is slot i (the original or its chain's correction); under `contrast` the
    kept members in slot order, each correction right after its original (`contrast_members`);
    under `append` the G originals come first, then the kept corrections in slot order.
    """

    sample: SafetySample
    sample_index: int
    originals: list[RolloutSample]
    corrections: list[RolloutSample] = field(default_factory=list)
    members: list[RolloutSample] = field(default_factory=list)

    @property
    def generated(self) -> list[RolloutSample]:
        return [*self.originals, *self.corrections]

    @property
    def discarded(self) -> list[RolloutSample]:
        """Answers generated but not in the group (replaced originals, dropped corrections)."""
        kept = {m.uid for m in self.members}
        return [s for s in self.generated if s.uid not in kept]

    def by_uid(self, uid: str) -> RolloutSample:
        for s in self.generated:
            if s.uid == uid:
                return s
        raise KeyError(uid)


@dataclass
class TrainingRow:
    """One member as a trainer sees it: an answer to the *original* prompt.

    A correction gets its original's `prompt_ids` (the reflection context is not trained on) and
    NaN logprobs: they were sampled under another context, so an engine's importance correction
    must treat its ratio as unknown (TRL: ratio 1), not as evidence.
    """

    prompt_ids: list[int]
    completion_ids: list[int]
    logprobs: list[float] | None
    member: RolloutSample


@dataclass
class RolloutResult:
    groups: list[RolloutGroup]
    metrics: dict[str, float]

    def training_rows(self, num_generations: int) -> list[TrainingRow]:
        """Every group's members, group after group, each exactly `num_generations` long (what
        fixed-group GRPO engines need; `append` groups do not fit, see `RolloutConfig.require_fixed_groups`)."""
        rows = []
        for g in self.groups:
            if len(g.members) != num_generations:
                raise ValueError(
                    f"group of sample {g.sample.id!r} has {len(g.members)} members, not num_generations={num_generations}"
                )
            for m in g.members:
                if not m.reflected:
                    rows.append(TrainingRow(m.generation.prompt_ids, m.generation.completion_ids, m.generation.logprobs, m))
                    continue
                original = g.originals[m.corrects if m.corrects is not None else m.slot]
                rows.append(
                    TrainingRow(
                        prompt_ids=list(original.generation.prompt_ids),
                        completion_ids=m.generation.completion_ids,
                        logprobs=[math.nan] * len(m.generation.completion_ids),
                        member=m,
                    )
                )
        return rows


class SafetyAwareRollout:
    """Reflect-and-correct rollout over any `Generator` and `Judge`.

    `renderer` gives the chat each sample was first asked in; reflection prompts extend it, so it
    must match how the generator renders `GenRequest(sample)` (default: `messages.build_messages`).
    """

    def __init__(
        self,
        generator: Generator,
        judge: Judge,
        rubric: Rubric,
        config: RolloutConfig,
        renderer: MessageRenderer | None = None,
    ) -> None:
        self.generator = generator
        self.judge = judge
        self.rubric = rubric
        self.config = config
        self.renderer = renderer or default_renderer

    def run(self, samples: list[SafetySample], num_generations: int) -> RolloutResult:
        """Roll out a batch of prompts (sync entry; use `arun` inside a running event loop)."""
        return run_sync(self.arun(samples, num_generations))

    async def arun(self, samples: list[SafetySample], num_generations: int) -> RolloutResult:
        cfg = self.config
        G = num_generations
        if G < 1:
            raise ConfigError(f"num_generations must be >= 1 (got {G})")
        if cfg.reflection and cfg.policy == "append" and cfg.append_cap is not None and cfg.append_cap < G:
            raise ConfigError(
                f"rollout.append_cap={cfg.append_cap} is below num_generations={G}; "
                "a group cannot hold fewer members than its originals"
            )

        outs = self._generate([GenRequest(s) for s in samples], G)
        groups: list[RolloutGroup] = []
        for i, (sample, gens) in enumerate(zip(samples, outs, strict=True)):
            originals = [
                RolloutSample(
                    sample_index=i,
                    slot=j,
                    generation=g,
                    verdict=Verdict(parse_ok=False),
                    reward=None,
                    unsafe=None,
                    uid=f"{sample.id}#{i}/{j}",
                )
                for j, g in enumerate(gens)
            ]
            groups.append(RolloutGroup(sample=sample, sample_index=i, originals=originals))
        await self._judge([(g.sample, s) for g in groups for s in g.originals])

        if cfg.reflection:
            await self._reflect(groups, G)
        for group in groups:
            group.members = self._assemble(group)
        return RolloutResult(groups=groups, metrics=rollout_metrics(groups))

    def _generate(self, requests: list[GenRequest], n: int) -> list[list[Generation]]:
        if not requests:
            return []
        outs = self.generator.generate(requests, n)
        if len(outs) != len(requests) or any(len(o) != n for o in outs):
            shape = [len(o) for o in outs]
            raise ValueError(f"generator returned {shape} generations for {len(requests)} requests x n={n}")
        return outs

    async def _judge(self, pairs: list[tuple[SafetySample, RolloutSample]]) -> None:
        """Judge every answer in one call and fill in verdict, unsafe flag and reward."""
        if not pairs:
            return
        verdicts = await self.judge.judge([JudgeItem(sample=s, response=r.text) for s, r in pairs])
        if len(verdicts) != len(pairs):
            raise ValueError(f"judge {self.judge.judge_id!r} returned {len(verdicts)} verdicts for {len(pairs)} answers")
        for (_, r), v in zip(pairs, verdicts, strict=True):
            r.verdict = v
            parts = self.rubric.unsafe_parts(v)
            r.unsafe = None if parts is None else bool(parts)
            r.unsafe_parts = list(parts or ())
            r.reward = compose_reward(v, self.rubric)

    def _chain_budget(self, G: int) -> int:
        """Most chains a group may start: every chain may add a member under `append`."""
        cfg = self.config
        if cfg.policy == "append":
            return max(0, cfg.group_cap(G) - G)
        return G

    async def _reflect(self, groups: list[RolloutGroup], G: int) -> None:
        cfg = self.config
        used = [0] * len(groups)
        # frontier: per group, the answers still unsafe that may be reflected on next, slot order
        frontier: list[list[RolloutSample]] = [
            [s for s in g.originals if s.unsafe is True][: self._chain_budget(G)] for g in groups
        ]
        base_chats: dict[int, list[dict]] = {}
        for rnd in range(1, cfg.rounds + 1):
            picks: list[tuple[int, RolloutSample]] = []
            for gi, todo in enumerate(frontier):
                room = cfg.max_reflections - used[gi]
                for parent in todo[: max(0, room)]:
                    picks.append((gi, parent))
                    used[gi] += 1
            if not picks:
                return
            requests, prompts = [], []
            for gi, parent in picks:
                group = groups[gi]
                if gi not in base_chats:
                    base_chats[gi] = self.renderer(group.sample)
                chat = build_reflection_messages(
                    base_chats[gi],
                    parent.text,
                    cfg,
                    parent.verdict.rationale if parent.verdict.parse_ok else None,
                    parent.unsafe_parts,
                )
                prompts.append(chat)
                requests.append(GenRequest(group.sample, messages=tuple(chat)))
            outs = self._generate(requests, 1)
            new: list[tuple[SafetySample, RolloutSample]] = []
            frontier = [[] for _ in groups]
            for (gi, parent), chat, gens in zip(picks, prompts, outs, strict=True):
                group = groups[gi]
                corr = RolloutSample(
                    sample_index=group.sample_index,
                    slot=parent.slot,
                    generation=gens[0],
                    verdict=Verdict(parse_ok=False),
                    reward=None,
                    unsafe=None,
                    uid=f"{group.originals[parent.slot].uid}.r{rnd}",
                    reflected=True,
                    corrects=parent.slot,
                    parent_uid=parent.uid,
                    round=rnd,
                    reflection_prompt=chat,
                    refers_back=cfg.reference_in(gens[0].text),
                )
                group.corrections.append(corr)
                new.append((group.sample, corr))
            await self._judge(new)
            for gi, group in enumerate(groups):
                frontier[gi] = [c for c in group.corrections if c.round == rnd and c.unsafe is True]

    def _chain_result(self, group: RolloutGroup, slot: int) -> RolloutSample | None:
        """The answer a chain puts in the group: first safe correction, else the last one if
        unsafe corrections are kept, else None. With `on_reference: reject`, a correction that
        refers to an earlier attempt is never put in the group."""
        chain = [c for c in group.corrections if c.slot == slot]
        if self.config.on_reference == "reject":
            chain = [c for c in chain if c.refers_back is None]
        if not chain:
            return None
        for c in chain:
            if c.unsafe is False:
                return c
        return chain[-1] if self.config.keep_unsafe_corrections else None

    def _assemble(self, group: RolloutGroup) -> list[RolloutSample]:
        members = list(group.originals)
        if not self.config.reflection:
            return members
        results = [self._chain_result(group, s.slot) for s in group.originals]
        if self.config.policy == "replace":
            return [r if r is not None else o for o, r in zip(members, results, strict=True)]
        if self.config.policy == "contrast":
            return contrast_members(members, results)
        appended = [r for r in results if r is not None]
        return [*members, *appended]  # the chain budget in _reflect keeps this within group_cap


def contrast_members(
    originals: list[RolloutSample], results: list[RolloutSample | None]
) -> list[RolloutSample]:
    """The `contrast` group: G members in which each corrected unsafe original stays beside its
    correction, so GRPO pushes the unsafe answer down and the correction up in the same group.

    `results[j]` is the correction kept for slot j (None: none); only a correction judged safe makes
    a pair (config validation refuses `keep_unsafe_corrections` under contrast, and an unsafe one
    that reaches here anyway never displaces a safe answer). Pairs are kept in slot order, at most
    G // 2 of them. The other slots are filled, in this order, with unsafe originals (uncorrected, then
    those of pairs that did not fit: with odd G one of them takes the spare slot), safe originals, the
    corrections of pairs that did not fit, and last unjudgeable originals (they carry no reward, so
    they are the first to make room). So surplus safe originals make room for pairs, and when every
    answer is unsafe and corrected, half the group is originals and half corrections. Members come
    in slot order, each correction right after its original.
    """
    G = len(originals)
    results = [r if r is not None and r.unsafe is False else None for r in results]
    pairs = [(o, r) for o, r in zip(originals, results, strict=True) if r is not None]
    kept_pairs, spare_pairs = pairs[: G // 2], pairs[G // 2 :]
    paired = {o.uid for o, _ in pairs}
    rest = [o for o in originals if o.uid not in paired]
    fill = (
        [o for o in rest if o.unsafe is True]
        + [o for o, _ in spare_pairs]
        + [o for o in rest if o.unsafe is False]
        + [r for _, r in spare_pairs]
        + [o for o in rest if o.unsafe is None]
    )
    chosen = {m.uid for pair in kept_pairs for m in pair} | {m.uid for m in fill[: G - 2 * len(kept_pairs)]}
    members: list[RolloutSample] = []
    for o, r in zip(originals, results, strict=True):
        if o.uid in chosen:
            members.append(o)
        if r is not None and r.uid in chosen:
            members.append(r)
    return members


def group_advantages(rewards: list[float | None], scale: bool = True) -> list[float | None]:
    """GRPO's group-relative advantages as TRL computes them (`scale_rewards="group"`): reward minus
    the group mean, over the sample standard deviation + 1e-4. An unscorable member (None) gets None
    (TRL gives it 0 and leaves it out of the mean); so does every member of a group with no reward."""
    scored = [r for r in rewards if r is not None]
    if not scored:
        return [None for _ in rewards]
    mean = sum(scored) / len(scored)
    std = math.sqrt(sum((r - mean) ** 2 for r in scored) / (len(scored) - 1)) if len(scored) > 1 else 0.0
    denom = (std + 1e-4) if scale else 1.0
    return [None if r is None else (r - mean) / denom for r in rewards]


def member_advantages(group: RolloutGroup) -> dict[str, float | None]:
    """uid -> group advantage of every member (what the trainer sees), for viewers and metrics."""
    rewards = [None if m.reward is None else m.reward.total for m in group.members]
    return {m.uid: a for m, a in zip(group.members, group_advantages(rewards), strict=True)}


def _mean(xs: list[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def rollout_metrics(groups: list[RolloutGroup]) -> dict[str, float]:
    """Per-step rollout metrics (keys `rollout/...`). A rate whose denominator is 0 is left out
    rather than reported as 0; counts are always present. Unsafe rates name their population:
    `originals_unsafe_rate` over the policy's sampled answers, `members_unsafe_rate` over the group
    members trained on (corrections included, replaced originals not)."""
    originals = [s for g in groups for s in g.originals]
    corrections = [s for g in groups for s in g.corrections]
    members = [s for g in groups for s in g.members]
    m: dict[str, float] = {
        "rollout/originals": float(len(originals)),
        "rollout/corrections": float(len(corrections)),
        "rollout/corrections_in_groups": float(sum(1 for s in members if s.reflected)),
        "rollout/parse_failures/original": float(sum(1 for s in originals if s.reward is None)),
        "rollout/parse_failures/correction": float(sum(1 for s in corrections if s.reward is None)),
    }
    m["rollout/parse_failures"] = m["rollout/parse_failures/original"] + m["rollout/parse_failures/correction"]
    if groups:
        m["rollout/group_size_mean"] = len(members) / len(groups)
        # groups whose members all score alike train nothing (every advantage 0): what `replace` does
        # to a group whose corrections score like its safe answers
        flat = 0
        for g in groups:
            scored = [s.reward.total for s in g.members if s.reward is not None]
            flat += len(scored) < 2 or max(scored) - min(scored) < 1e-9
        m["rollout/zero_spread_groups_frac"] = flat / len(groups)
        m["rollout/unsafe_originals_in_groups"] = float(
            sum(1 for g in groups for s in g.members if not s.reflected and s.unsafe is True)
        )
    judged = [s for s in originals if s.unsafe is not None]
    judged_members = [s for s in members if s.unsafe is not None]
    rates = {
        # the policy's own answers (what the step measures), and the members the step trains on
        "rollout/originals_unsafe_rate": (sum(1 for s in judged if s.unsafe), len(judged)),
        "rollout/originals_unsafe_rate/answer": (sum(1 for s in judged if "answer" in s.unsafe_parts), len(judged)),
        "rollout/originals_unsafe_rate/reasoning": (
            sum(1 for s in judged if "reasoning" in s.unsafe_parts),
            len(judged),
        ),
        "rollout/members_unsafe_rate": (sum(1 for s in judged_members if s.unsafe), len(judged_members)),
        "rollout/reflection_rate": (sum(1 for s in corrections if s.round == 1), len(originals)),
    }
    judged_corr = [s for s in corrections if s.unsafe is not None]
    rates["rollout/correction_success_rate"] = (sum(1 for s in judged_corr if not s.unsafe), len(judged_corr))
    referring = sum(1 for s in corrections if s.refers_back is not None)
    m["rollout/corrections_referring_back"] = float(referring)
    rates["rollout/correction_reference_rate"] = (referring, len(corrections))
    for key, (num, den) in rates.items():
        if den:
            m[key] = num / den
    for kind, items in (("original", originals), ("corrected", corrections)):
        rewards = [s.reward for s in items if s.reward is not None]
        total = _mean([r.total for r in rewards])
        if total is None:
            continue
        m[f"rollout/reward_mean/{kind}"] = total
        parts = sorted({k for r in rewards for k in r.parts})
        for part in parts:
            vals = [r.parts[part] for r in rewards if part in r.parts and not math.isnan(r.parts[part])]
            if vals:
                m[f"rollout/{kind}/{part}"] = sum(vals) / len(vals)
    return m


@dataclass
class GroupMember:
    """A member as a fixed-group trainer consumes it (`generation.prompt_ids` is the original
    prompt's, logprobs NaN for corrections: see `TrainingRow`), with its verdict, reward and the
    rubric's unsafe decision."""

    generation: Generation
    verdict: Verdict
    reward: RewardBreakdown | None
    reflected: bool
    sample: RolloutSample | None = None
    unsafe: bool | None = None


#: (generator bound to the current policy, prompts, G) -> exactly G members per prompt, in prompt order.
GroupRollout = Callable[[Generator, list[SafetySample], int], list[list[GroupMember]]]


class SafetyAwareGroupRollout:
    """The trainer-facing callable `(generator, samples, G) -> G members per prompt`.

    A new `SafetyAwareRollout` is bound to each call's generator (the trainer's current policy).
    `last_result` keeps the latest groups and metrics for logging and the trajectory log.
    """

    def __init__(
        self, judge: Judge, rubric: Rubric, config: RolloutConfig, renderer: MessageRenderer | None = None
    ) -> None:
        config.require_fixed_groups("a fixed-group GRPO trainer (TRL)")
        self.judge = judge
        self.rubric = rubric
        self.config = config
        self.renderer = renderer
        self.last_result: RolloutResult | None = None

    def __call__(self, generator: Generator, samples: list[SafetySample], n: int) -> list[list[GroupMember]]:
        rollout = SafetyAwareRollout(generator, self.judge, self.rubric, self.config, self.renderer)
        result = rollout.run(samples, n)
        self.last_result = result
        rows = result.training_rows(n)
        out = []
        for k in range(0, len(rows), n):
            out.append(
                [
                    GroupMember(
                        generation=Generation(
                            text=r.member.text,
                            completion_ids=list(r.completion_ids),
                            logprobs=None if r.logprobs is None else list(r.logprobs),
                            prompt_ids=list(r.prompt_ids),
                        ),
                        verdict=r.member.verdict,
                        reward=r.member.reward,
                        reflected=r.member.reflected,
                        sample=r.member,
                        unsafe=r.member.unsafe,
                    )
                    for r in rows[k : k + n]
                ]
            )
        return out

"""Safety-aware rollout, engine-free: sample G answers per prompt, judge them, have the policy reflect
on the unsafe ones and correct them, judge the corrections, and assemble each GRPO group
(`group_policy`). The reward is computed here, once per answer (`reward.compose_reward`); the
result comes back as values (`answers.RolloutResult`: trainer rows, metrics, groups).

Batching: one `generate` call for all B x G originals (n=G), one per reflection round for all its
reflection prompts (n=1); one judge call per stage. Each answer is judged exactly once.

A correction is trained as an answer to the *original* prompt; it carries `reflected=True`, the
slot of the original it corrects (`corrects`) and the uid of the answer it was reflected from.
With `reflection` off this is a plain rollout: one generate call and one judge call.
"""

from __future__ import annotations

from collections.abc import Callable

from safer_vlm.data.schema import SafetySample
from safer_vlm.errors import ConfigError
from safer_vlm.generation.base import Generation, Generator, GenRequest
from safer_vlm.judge.base import Judge, JudgeItem
from safer_vlm.judge.rubric import Rubric
from safer_vlm.reward import compose_reward
from safer_vlm.rollout.answers import Answer, RolloutGroup, RolloutResult, training_rows
from safer_vlm.rollout.config import RolloutConfig
from safer_vlm.rollout.group_policy import assemble_members
from safer_vlm.rollout.metrics import rollout_metrics
from safer_vlm.rollout.reflection import build_reflection_messages
from safer_vlm.sync_bridge import run_sync

#: Renders the chat a sample is first asked in (the generator's default rendering of `GenRequest(sample)`).
MessageRenderer = Callable[[SafetySample], list[dict]]


def default_renderer(sample: SafetySample) -> list[dict]:
    """The project's one chat rendering (`safer_vlm.generation.messages.build_messages`)."""
    from safer_vlm.generation.messages import build_messages

    return list(build_messages(GenRequest(sample)))


class SafetyAwareRollout:
    """Reflect-and-correct rollout over any `Generator` and `Judge`; a `GroupRollout`.

    The generator is given per call (a trainer binds a new one to its current policy each step).
    `renderer` gives the chat each sample was first asked in; reflection prompts extend it, so it
    must match how the generator renders `GenRequest(sample)` (default: `messages.build_messages`).
    """

    def __init__(
        self,
        judge: Judge,
        rubric: Rubric,
        config: RolloutConfig,
        renderer: MessageRenderer | None = None,
    ) -> None:
        self.judge = judge
        self.rubric = rubric
        self.config = config
        self.renderer = renderer or default_renderer

    def __call__(self, generator: Generator, samples: list[SafetySample], num_generations: int) -> RolloutResult:
        return self.run(generator, samples, num_generations)

    def run(self, generator: Generator, samples: list[SafetySample], num_generations: int) -> RolloutResult:
        """Roll out a batch of prompts (sync entry; use `arun` inside a running event loop)."""
        return run_sync(self.arun(generator, samples, num_generations))

    async def arun(self, generator: Generator, samples: list[SafetySample], num_generations: int) -> RolloutResult:
        cfg = self.config
        G = num_generations
        if G < 1:
            raise ConfigError(f"num_generations must be >= 1 (got {G})")
        if cfg.reflection and cfg.policy == "append" and cfg.append_cap is not None and cfg.append_cap < G:
            raise ConfigError(
                f"rollout.append_cap={cfg.append_cap} is below num_generations={G}; "
                "a group cannot hold fewer members than its originals"
            )

        outs = _generate(generator, [GenRequest(s) for s in samples], G)
        groups: list[RolloutGroup] = []
        for i, (sample, gens) in enumerate(zip(samples, outs, strict=True)):
            originals = [
                Answer(sample_index=i, slot=j, generation=g, uid=f"{sample.id}#{i}/{j}") for j, g in enumerate(gens)
            ]
            groups.append(RolloutGroup(sample=sample, sample_index=i, originals=originals))
        await self._judge([(g.sample, s) for g in groups for s in g.originals])

        if cfg.reflection:
            await self._reflect(generator, groups, G)
        for group in groups:
            group.members = assemble_members(group, cfg)
        return RolloutResult(groups=groups, rows=training_rows(groups), metrics=rollout_metrics(groups))

    async def _judge(self, pairs: list[tuple[SafetySample, Answer]]) -> None:
        """Judge every answer in one call and fill in verdict, unsafe parts and reward."""
        if not pairs:
            return
        verdicts = await self.judge.judge([JudgeItem(sample=s, response=r.text) for s, r in pairs])
        if len(verdicts) != len(pairs):
            raise ValueError(f"judge {self.judge.judge_id!r} returned {len(verdicts)} verdicts for {len(pairs)} answers")
        for (_, r), v in zip(pairs, verdicts, strict=True):
            r.verdict = v
            parts = self.rubric.unsafe_parts(v)
            r.unsafe_parts = None if parts is None else list(parts)
            r.reward = compose_reward(v, self.rubric)

    def _chain_budget(self, G: int) -> int:
        """Most chains a group may start: every chain may add a member under `append`."""
        cfg = self.config
        if cfg.policy == "append":
            return max(0, cfg.group_cap(G) - G)
        return G

    async def _reflect(self, generator: Generator, groups: list[RolloutGroup], G: int) -> None:
        cfg = self.config
        used = [0] * len(groups)
        # frontier: per group, the answers still unsafe that may be reflected on next, slot order
        frontier: list[list[Answer]] = [
            [s for s in g.originals if s.unsafe is True][: self._chain_budget(G)] for g in groups
        ]
        base_chats: dict[int, list[dict]] = {}
        for rnd in range(1, cfg.rounds + 1):
            picks: list[tuple[int, Answer]] = []
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
                    parent.unsafe_parts or (),
                )
                prompts.append(chat)
                requests.append(GenRequest(group.sample, messages=tuple(chat)))
            outs = _generate(generator, requests, 1)
            new: list[tuple[SafetySample, Answer]] = []
            frontier = [[] for _ in groups]
            for (gi, parent), chat, gens in zip(picks, prompts, outs, strict=True):
                group = groups[gi]
                corr = Answer(
                    sample_index=group.sample_index,
                    slot=parent.slot,
                    generation=gens[0],
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


def _generate(generator: Generator, requests: list[GenRequest], n: int) -> list[list[Generation]]:
    if not requests:
        return []
    outs = generator.generate(requests, n)
    if len(outs) != len(requests) or any(len(o) != n for o in outs):
        shape = [len(o) for o in outs]
        raise ValueError(f"generator returned {shape} generations for {len(requests)} requests x n={n}")
    return outs

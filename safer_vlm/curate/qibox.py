"""QI-Box: keep the prompts where the policy is unsure (SaFeR-VLM's QI-Safe selection).

For each prompt, K answers are sampled from the policy and judged; with the composed rewards r_1..r_K
of the verdicts that could be used, quality = mean(r) and instability = population standard
deviation sqrt(mean((r - quality)^2)) (the spread of *these* K answers, not an estimate of a wider
population). Prompts of moderate quality (q_min <= quality <= q_max) and high instability
(instability >= s_min) carry RL signal; `select` keeps those, balanced across harm categories.

Scoring is resumable: each finished prompt's answers and verdicts are written atomically to its own
file in a cache folder whose settings (K, seed, generator, judge, rubric) must match; a prompt's
sampling seed derives from the global seed and its id, so a resumed run equals an uninterrupted one.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import random
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from safer_vlm.config import StrictModel
from safer_vlm.data.schema import SafetySample, prompt_uid
from safer_vlm.errors import ConfigError, DataError
from safer_vlm.generation.base import Generation, Generator, GenRequest
from safer_vlm.judge.base import Judge, JudgeItem, Verdict
from safer_vlm.judge.rubric import Rubric
from safer_vlm.reward import compose_reward
from safer_vlm.run_folder import write_json_atomic  # noqa: F401  (re-exported for curate.pipeline)
from safer_vlm.sync_bridge import run_sync

BalanceBy = Literal["category", "subcategory", "source"]
UNCATEGORISED = "uncategorised"


class QIBox(StrictModel):
    """The selection box: quality band [q_min, q_max] (edges included) x instability floor s_min."""

    q_min: float = Field(0.2, description="lowest mean reward kept (inclusive)")
    q_max: float = Field(0.8, description="highest mean reward kept (inclusive)")
    s_min: float = Field(0.1, ge=0.0, description="lowest reward standard deviation kept (inclusive)")

    @model_validator(mode="after")
    def _ordered(self) -> QIBox:
        if self.q_min > self.q_max:
            raise ValueError(f"q_min ({self.q_min}) must not exceed q_max ({self.q_max})")
        return self

    def reject_reason(self, quality: float, instability: float) -> str | None:
        """Why a prompt falls outside the box, or None when it is inside."""
        if quality < self.q_min:
            return "quality below q_min"
        if quality > self.q_max:
            return "quality above q_max"
        if instability < self.s_min:
            return "instability below s_min"
        return None


class QIBoxConfig(StrictModel):
    """How prompts are scored and selected."""

    k: int = Field(4, ge=2, description="answers sampled per prompt")
    box: QIBox = Field(default_factory=QIBox)
    target_size: int | None = Field(None, ge=1, description="keep at most this many prompts (None: all in the box)")
    balance_by: BalanceBy | None = Field("category", description="field whose values share the target equally")
    min_valid: int = Field(2, ge=1, description="fewest usable verdicts for a prompt to get statistics")
    max_concurrency: int = Field(8, ge=1, description="prompts generated but not yet judged, at most")

    @model_validator(mode="after")
    def _min_valid_fits(self) -> QIBoxConfig:
        if self.min_valid > self.k:
            raise ValueError(f"min_valid ({self.min_valid}) cannot exceed k ({self.k})")
        return self


@dataclass
class PromptStats:
    """Scores of one prompt's K answers. `rewards` holds the usable ones only; `dropped` says why a
    prompt has no statistics (then quality and instability are None)."""

    uid: str
    source: str
    category: str | None
    subcategory: str | None
    k: int
    rewards: list[float]
    n_parse_failures: int
    n_transport_failures: int
    n_unsafe: int
    quality: float | None
    instability: float | None
    dropped: str | None = None

    @property
    def n_valid(self) -> int:
        return len(self.rewards)

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["n_valid"] = self.n_valid
        return d


def reward_stats(rewards: list[float]) -> tuple[float, float]:
    """(mean, population standard deviation) of a non-empty list."""
    n = len(rewards)
    mean = math.fsum(rewards) / n
    return mean, math.sqrt(math.fsum((r - mean) ** 2 for r in rewards) / n)


def prompt_stats(sample: SafetySample, verdicts: list[Verdict], rubric: Rubric, k: int, min_valid: int) -> PromptStats:
    """Statistics of one prompt from its verdicts; unusable verdicts are counted, never scored."""
    rewards: list[float] = []
    parse_fail = transport_fail = unsafe = 0
    for v in verdicts:
        if v.error is not None:
            transport_fail += 1
            continue
        rb = compose_reward(v, rubric)
        if rb is None:
            parse_fail += 1
            continue
        rewards.append(rb.total)
        unsafe += bool(rubric.is_unsafe(v))  # the rubric's one unsafe rule
    quality = instability = None
    dropped = None
    if transport_fail:
        dropped = "judge transport failure"
    elif len(rewards) < min_valid:
        dropped = "too few usable verdicts"
    else:
        quality, instability = reward_stats(rewards)
    return PromptStats(
        uid=prompt_uid(sample),
        source=sample.source,
        category=sample.category,
        subcategory=sample.subcategory,
        k=k,
        rewards=rewards,
        n_parse_failures=parse_fail,
        n_transport_failures=transport_fail,
        n_unsafe=unsafe,
        quality=quality,
        instability=instability,
        dropped=dropped,
    )


# ---------------------------------------------------------------- cache


class CacheMismatchError(ConfigError):
    """A score cache made under other settings; reusing it would mix incomparable scores."""


def fingerprint(settings: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


class ScoreCache:
    """Finished prompts, one JSON file each, under `folder`; `meta.json` records the settings.

    Opening a folder whose settings differ raises CacheMismatchError naming the differing keys."""

    def __init__(self, folder: Path, settings: dict[str, Any]) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.settings = json.loads(json.dumps(settings, sort_keys=True, default=str))
        self.key = fingerprint(self.settings)
        meta = self.folder / "meta.json"
        if meta.exists():
            old = json.loads(meta.read_text(encoding="utf-8"))
            if old.get("settings") != self.settings:
                prev = old.get("settings", {})
                diff = sorted(k for k in set(prev) | set(self.settings) if prev.get(k) != self.settings.get(k))
                raise CacheMismatchError(
                    f"score cache {self.folder} was made with other settings (differing: {', '.join(diff)}); "
                    "use another output_dir or delete that folder to score afresh"
                )
        else:
            write_json_atomic(meta, {"settings": self.settings, "fingerprint": self.key})

    def path_for(self, uid: str, prompt_key: str) -> Path:
        digest = hashlib.sha256(f"{uid}\0{prompt_key}".encode()).hexdigest()[:32]
        return self.folder / f"{digest}.json"

    def get(self, sample: SafetySample) -> dict[str, Any] | None:
        uid, key = prompt_uid(sample), sample.prompt_key()
        path = self.path_for(uid, key)
        if not path.exists():
            return None
        try:
            rec = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise DataError(f"{path}: cache record is not valid JSON; delete it to rescore prompt {uid}") from None
        if rec.get("uid") != uid or rec.get("prompt_key") != key or rec.get("fingerprint") != self.key:
            raise CacheMismatchError(f"{path}: cache record does not belong to prompt {uid} under these settings")
        return rec

    def put(self, sample: SafetySample, seed: int, generations: list[str], verdicts: list[Verdict]) -> dict[str, Any]:
        rec = {
            "uid": prompt_uid(sample),
            "prompt_key": sample.prompt_key(),
            "fingerprint": self.key,
            "prompt_seed": seed,
            "generations": generations,
            "verdicts": [v.to_dict() for v in verdicts],
        }
        write_json_atomic(self.path_for(rec["uid"], rec["prompt_key"]), rec)
        return rec


# ---------------------------------------------------------------- scoring


def prompt_seed(global_seed: int, uid: str) -> int:
    """The sampling seed of one prompt: independent of order, batching and resumption."""
    return int.from_bytes(hashlib.sha256(f"{global_seed}:{uid}".encode()).digest()[:4], "big")


def seed_everything(seed: int, generator: Generator | None = None) -> None:
    """Seed every RNG a generator may draw from (Python, numpy, torch when loaded); a generator with
    its own `set_seed(seed)` method is seeded through it too."""
    random.seed(seed)
    np = sys.modules.get("numpy")
    if np is not None:
        np.random.seed(seed)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)
    set_seed = getattr(generator, "set_seed", None)
    if callable(set_seed):
        set_seed(seed)


@dataclass
class ScoreResult:
    stats: list[PromptStats]
    scored: int  # prompts sampled and judged in this run
    reused: int  # prompts read from the cache
    timings: dict[str, float] = field(default_factory=dict)  # seconds: generate, judge, wall


def score_prompts(
    samples: list[SafetySample],
    generator: Generator,
    judge: Judge,
    rubric: Rubric,
    cfg: QIBoxConfig,
    cache: ScoreCache,
    seed: int,
    on_done: Callable[[], None] | None = None,
) -> ScoreResult:
    """Sample K answers per prompt, judge them and return statistics for every prompt, in order.

    Prompts found in `cache` are not redone. Generation runs prompt by prompt in one worker thread
    (seeded per prompt); judging runs on the event loop, overlapping the next prompts' generation,
    with at most `cfg.max_concurrency` prompts in flight. A prompt is cached once judged; one whose
    judge call failed in transport is not cached, so the next run retries it."""
    return run_sync(_score(samples, generator, judge, rubric, cfg, cache, seed, on_done))


def _generate(generator: Generator, sample: SafetySample, k: int, seed: int) -> list[Generation]:
    seed_everything(seed, generator)
    out = generator.generate([GenRequest(sample=sample)], n=k)
    if len(out) != 1 or len(out[0]) != k:
        raise RuntimeError(f"generator returned {[len(g) for g in out]} answers for 1 prompt x {k}")
    return out[0]


async def _score(
    samples: list[SafetySample],
    generator: Generator,
    judge: Judge,
    rubric: Rubric,
    cfg: QIBoxConfig,
    cache: ScoreCache,
    seed: int,
    on_done: Callable[[], None] | None,
) -> ScoreResult:
    started = time.perf_counter()
    timings = {"generate": 0.0, "judge": 0.0}
    records: dict[str, dict[str, Any]] = {}
    failed: dict[str, list[Verdict]] = {}
    todo: list[SafetySample] = []
    for s in samples:
        rec = cache.get(s)
        if rec is None:
            todo.append(s)
        else:
            records[prompt_uid(s)] = rec
            if on_done:
                on_done()
    reused = len(records)

    loop = asyncio.get_running_loop()
    slots = asyncio.Semaphore(cfg.max_concurrency)
    tasks: list[asyncio.Task] = []

    async def judge_and_store(s: SafetySample, pseed: int, gens: list[Generation]) -> None:
        try:
            t0 = time.perf_counter()
            verdicts = await judge.judge([JudgeItem(sample=s, response=g.text) for g in gens])
            timings["judge"] += time.perf_counter() - t0
            if len(verdicts) != len(gens):
                raise RuntimeError(f"judge {judge.judge_id} returned {len(verdicts)} verdicts for {len(gens)} answers")
            if any(v.error is not None for v in verdicts):
                failed[prompt_uid(s)] = verdicts
            else:
                records[prompt_uid(s)] = cache.put(s, pseed, [g.text for g in gens], verdicts)
            if on_done:
                on_done()
        finally:
            slots.release()

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="curate-gen") as pool:
        try:
            for s in todo:
                await slots.acquire()
                pseed = prompt_seed(seed, prompt_uid(s))
                t0 = time.perf_counter()
                try:
                    gens = await loop.run_in_executor(pool, _generate, generator, s, cfg.k, pseed)
                except BaseException:
                    slots.release()
                    raise
                timings["generate"] += time.perf_counter() - t0
                tasks.append(asyncio.create_task(judge_and_store(s, pseed, gens)))
        finally:
            # whatever happens, prompts already generated are judged and stored before leaving
            results = await asyncio.gather(*tasks, return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException):
                raise r

    stats = []
    for s in samples:
        uid = prompt_uid(s)
        if uid in records:
            verdicts = [Verdict.from_dict(v) for v in records[uid]["verdicts"]]
        else:
            verdicts = failed[uid]
        stats.append(prompt_stats(s, verdicts, rubric, cfg.k, cfg.min_valid))
    timings["wall"] = time.perf_counter() - started
    return ScoreResult(stats=stats, scored=len(todo), reused=reused, timings=timings)


# ---------------------------------------------------------------- selection


@dataclass
class Selection:
    """What `select` kept, and why the rest was left out."""

    selected: list[PromptStats]
    in_box: int
    left_out: dict[str, int]  # reason -> prompts
    groups_in_box: dict[str, int]
    groups_selected: dict[str, int]


def _group(st: PromptStats, balance_by: BalanceBy | None) -> str:
    if balance_by is None:
        return "all"
    return getattr(st, balance_by) or UNCATEGORISED


def _tiebreak(seed: int, name: str) -> str:
    return hashlib.sha256(f"{seed}:{name}".encode()).hexdigest()


def select(
    stats: list[PromptStats],
    box: QIBox,
    target_size: int | None = None,
    balance_by: BalanceBy | None = "category",
    seed: int = 0,
) -> Selection:
    """Keep the prompts inside `box`; if more than `target_size`, take them round-robin across the
    `balance_by` groups (group order shuffled by `seed`), each group in decreasing instability (ties
    broken by `seed`), so every group gets an equal share until it runs out. Output keeps input order."""
    left_out: Counter[str] = Counter()
    inside: list[tuple[int, PromptStats]] = []
    for pos, st in enumerate(stats):
        if st.dropped is not None or st.quality is None or st.instability is None:
            left_out[f"dropped: {st.dropped}"] += 1
            continue
        reason = box.reject_reason(st.quality, st.instability)
        if reason:
            left_out[reason] += 1
        else:
            inside.append((pos, st))
    groups: dict[str, list[tuple[int, PromptStats]]] = defaultdict(list)
    for item in inside:
        groups[_group(item[1], balance_by)].append(item)
    groups_in_box = {g: len(v) for g, v in sorted(groups.items())}

    if target_size is None or len(inside) <= target_size:
        chosen = inside
    else:
        for members in groups.values():
            members.sort(key=lambda it: (-it[1].instability, _tiebreak(seed, it[1].uid)))
        order = sorted(groups, key=lambda g: _tiebreak(seed, f"group:{g}"))
        chosen = []
        depth = 0
        while len(chosen) < target_size:
            for g in order:
                if depth < len(groups[g]) and len(chosen) < target_size:
                    chosen.append(groups[g][depth])
            depth += 1
        left_out["over target size"] += len(inside) - len(chosen)
        chosen.sort(key=lambda it: it[0])
    selected = [st for _, st in chosen]
    groups_selected = Counter(_group(st, balance_by) for st in selected)
    return Selection(
        selected=selected,
        in_box=len(inside),
        left_out=dict(sorted(left_out.items())),
        groups_in_box=groups_in_box,
        groups_selected={g: groups_selected.get(g, 0) for g in groups_in_box},
    )

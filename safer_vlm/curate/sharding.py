"""QI-Box scoring on N processes (`torchrun --nproc_per_node N -m safer_vlm.cli curate ...`).

The main process alone loads, validates, deduplicates and decontaminates (those stages write image
caches and are cheap next to scoring), opens the score cache, then hands the candidates to the other
ranks. Each rank scores every N-th candidate (`Ranks.mine`), writing the per-prompt cache records of
its own prompts only; the ranks' statistics are gathered and the main process alone selects and
writes. A prompt's sampling seed depends on the global seed and its id only, so which rank sampled it
changes nothing: N processes select what one does. The cache is per prompt, so a killed N-process run
resumes on any number of processes. A failure on any rank stops every rank (no rank waits forever).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from safer_vlm.curate.qibox import PromptStats, ScoreResult
from safer_vlm.data.schema import SafetySample, prompt_uid
from safer_vlm.distributed import Ranks, all_gather_json
from safer_vlm.errors import SaferVLMError


class OtherRankFailed(SaferVLMError):
    """Another process of this run failed; its own error is in its log."""


def exchange(ranks: Ranks, work: Callable[[], Any]) -> list[Any]:
    """Run `work` here, then share every rank's JSON result with every rank. If any rank failed,
    every rank raises (this one its own exception, the others OtherRankFailed naming it)."""
    error: BaseException | None = None
    try:
        value = {"ok": work()}
    except BaseException as exc:  # noqa: BLE001 - re-raised below, after the others are told
        error = exc
        value = {"error": f"{type(exc).__name__}: {exc}"}
    every = all_gather_json(ranks, value)
    if error is not None:
        raise error
    failed = [(r, v["error"]) for r, v in enumerate(every) if "error" in v]
    if failed:
        rank, msg = failed[0]
        raise OtherRankFailed(f"curate: rank {rank} of {ranks.world} failed ({msg}); see its log")
    return [v["ok"] for v in every]


def _sample_to_json(s: SafetySample) -> dict[str, Any]:
    return {"sample": s.model_dump(mode="json"), "root": None if s.root is None else str(s.root)}


def _sample_from_json(d: dict[str, Any]) -> SafetySample:
    s = SafetySample.model_validate(d["sample"])
    s.root = None if d["root"] is None else Path(d["root"])
    return s


class Handoff:
    """The main process's one message to the other ranks: the candidates to score, or why there
    are none (then every rank stops instead of waiting)."""

    def __init__(self, ranks: Ranks) -> None:
        self.ranks = ranks
        self.sent = False

    def send(self, candidates: list[SafetySample]) -> None:
        self._send({"ok": [_sample_to_json(s) for s in candidates]})

    def fail(self, exc: BaseException) -> None:
        self._send({"error": f"{type(exc).__name__}: {exc}"})

    def _send(self, value: dict[str, Any]) -> None:
        if self.ranks.world > 1 and not self.sent:
            self.sent = True
            all_gather_json(self.ranks, value)


def receive_candidates(ranks: Ranks) -> list[SafetySample]:
    """On a rank other than the main one: wait for the main process's Handoff."""
    message = all_gather_json(ranks, None)[0]
    if "error" in message:
        raise OtherRankFailed(f"curate: the main process failed before scoring ({message['error']}); see its log")
    return [_sample_from_json(d) for d in message["ok"]]


def score_sharded(
    ranks: Ranks, samples: list[SafetySample], score_shard: Callable[[list[SafetySample]], ScoreResult]
) -> ScoreResult:
    """`score_shard` (score_prompts on this rank's generator, judge and cache) on this rank's shard;
    every rank returns the statistics of all `samples`, in order, with counts summed over ranks
    (timings: generate and judge summed, wall the slowest rank's)."""
    if ranks.world <= 1:
        return score_shard(samples)

    def mine() -> dict[str, Any]:
        res = score_shard(ranks.mine(samples))
        return {"stats": [st.to_dict() for st in res.stats], "scored": res.scored, "reused": res.reused,
                "timings": res.timings}

    parts = exchange(ranks, mine)
    by_uid: dict[str, PromptStats] = {}
    for part in parts:
        for d in part["stats"]:
            d = dict(d)
            d.pop("n_valid", None)
            by_uid[d["uid"]] = PromptStats(**d)
    timings = {
        "generate": sum(p["timings"].get("generate", 0.0) for p in parts),
        "judge": sum(p["timings"].get("judge", 0.0) for p in parts),
        "wall": max(p["timings"].get("wall", 0.0) for p in parts),
    }
    return ScoreResult(
        stats=[by_uid[prompt_uid(s)] for s in samples],
        scored=sum(p["scored"] for p in parts),
        reused=sum(p["reused"] for p in parts),
        timings=timings,
    )

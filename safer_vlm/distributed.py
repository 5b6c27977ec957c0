"""Which process this is, and who writes: the few multi-process facts train, curate and eval share.

Under `torchrun --nproc_per_node N` or `accelerate launch` with a multi-process config, every process
runs the same command with `RANK` / `WORLD_SIZE` / `LOCAL_RANK` in its environment. One rule follows:
only the main process (rank 0) writes a shared file; a file another rank must keep (its trajectory
shard, its RNG state) carries the rank in its name (`rank_path`). Collectives go through
torch.distributed (gloo on CPU, whatever the launcher set up on GPUs) and carry JSON text only.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Ranks:
    """This process's place: rank `rank` of `world` processes (`local` on its own node)."""

    rank: int = 0
    world: int = 1
    local: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    def mine(self, items: list) -> list:
        """Every `world`-th item from `rank`: disjoint shards covering everything, fixed by position
        alone (not by what was cached), so a resume on another number of processes re-shards cleanly."""
        return list(items[self.rank :: self.world])


def env_ranks() -> Ranks:
    """The launcher's view (environment variables), without touching torch.distributed."""
    return Ranks(
        rank=int(os.environ.get("RANK", "0")),
        world=int(os.environ.get("WORLD_SIZE", "1")),
        local=int(os.environ.get("LOCAL_RANK", "0")),
    )


def join(what: str) -> Ranks:
    """This process's Ranks; with more than one process, joins the process group (gloo, unless one is
    set up already) and says `<what>: rank r of world size n` on every rank, so a log shows how many
    processes really ran."""
    ranks = env_ranks()
    if ranks.world <= 1:
        return Ranks()
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend="gloo")
    ranks = Ranks(rank=dist.get_rank(), world=dist.get_world_size(), local=ranks.local)
    say(f"{what}: rank {ranks.rank} of world size {ranks.world}")
    return ranks


def say(line: str) -> None:
    """One line on stdout in one write, so the lines of several ranks sharing a terminal or a pipe
    never run into each other."""
    import sys

    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def leave(ranks: Ranks, clean: bool = True) -> None:
    """Leave the process group `join` made: after a barrier when every rank got here (`clean`), so
    no rank exits while another still talks to it; at once after a failure (the others stop too)."""
    if ranks.world <= 1:
        return
    import torch.distributed as dist

    if dist.is_initialized():
        if clean:
            dist.barrier()
        dist.destroy_process_group()


def barrier(ranks: Ranks) -> None:
    if ranks.world > 1:
        import torch.distributed as dist

        dist.barrier()


def all_gather_json(ranks: Ranks, obj: Any) -> list[Any]:
    """Every rank's `obj` (JSON-serialisable), in rank order, on every rank."""
    if ranks.world <= 1:
        return [obj]
    import torch.distributed as dist

    out: list[Any] = [None] * ranks.world
    dist.all_gather_object(out, json.dumps(obj, sort_keys=True, default=str))
    return [json.loads(text) for text in out]


def rank_path(path: Path, rank: int) -> Path:
    """`path` for rank 0, `<stem>.rank<r><suffix>` for another rank: a rank-local file by name."""
    path = Path(path)
    return path if rank == 0 else path.with_name(f"{path.stem}.rank{rank}{path.suffix}")


def rank_device(device: str, ranks: Ranks) -> str:
    """`cuda` under several processes means this rank's own GPU, `cuda:<local rank>`."""
    return f"cuda:{ranks.local}" if device == "cuda" and ranks.world > 1 else device

"""Evaluation across processes: under `torchrun --nproc_per_node N` (or any launcher that sets
RANK / WORLD_SIZE, e.g. `accelerate launch` with a multi-process config) each rank answers and
judges every N-th item of each benchmark, appending to its own store files
(`answers.rank<r>.jsonl`, see `safer_vlm.eval.cache`); after a barrier the main process reads all
ranks' records, scores the whole benchmark and alone writes results. The stores are per item and
every store reads every rank's file, so a killed N-process eval resumes on any number of processes.

The merge reads the other ranks' files, so `--out` must be on a filesystem all ranks see (one node,
or a shared filesystem across nodes). Collectives go through torch.distributed: gloo on CPU,
whatever the launcher set up on GPUs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Shard:
    """This process's place: rank `rank` of `world` processes."""

    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def mine(self, items: list[T]) -> list[T]:
        """Every `world`-th item starting at `rank`: shards are disjoint, cover everything and do
        not depend on what was cached before (so a resume on another N re-shards cleanly)."""
        return items[self.rank :: self.world] if self.world > 1 else list(items)

    def barrier(self) -> None:
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()

    def total(self, n: int) -> int:
        """`n` summed over ranks (how many answers the whole run generated or judged now)."""
        if self.world == 1:
            return n
        import torch
        import torch.distributed as dist

        device = "cuda" if dist.get_backend() == "nccl" else "cpu"
        t = torch.tensor([n], dtype=torch.long, device=device)
        dist.all_reduce(t)
        return int(t.item())

    def any(self, flag: bool) -> bool:
        """True on every rank when it is true on any (one rank's failure stops all, no hang)."""
        return self.total(int(flag)) > 0


def current_shard(say: object = None) -> Shard:
    """The shard of this process, from the launcher's environment; joins the process group
    (gloo unless one is set up already) when there is more than one process, and says so."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Shard()
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend="gloo")  # our collectives are a few CPU integers
    shard = Shard(rank=dist.get_rank(), world=dist.get_world_size())
    print(f"eval: rank {shard.rank} of world size {shard.world}", flush=True)
    return shard


def rank_device(device: str) -> str:
    """`cuda` on a multi-process launch means this rank's own GPU (`cuda:<LOCAL_RANK>`)."""
    local = os.environ.get("LOCAL_RANK")
    if device == "cuda" and local is not None and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return f"cuda:{local}"
    return device

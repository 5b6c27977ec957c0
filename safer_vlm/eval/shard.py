"""Evaluation across processes: under `torchrun --nproc_per_node N` (or any launcher that sets
RANK / WORLD_SIZE, e.g. `accelerate launch` with a multi-process config) each rank answers and
judges every N-th item of each benchmark, appending to its own store files
(`answers.rank<r>.jsonl`, see `safer_vlm.eval.cache`); after a barrier the main process reads all
ranks' records, scores the whole benchmark and alone writes results. The stores are per item and
every store reads every rank's file, so a killed N-process eval resumes on any number of processes.

The merge reads the other ranks' files, so `--out` must be on a filesystem all ranks see (one node,
or a shared filesystem across nodes). The process facts themselves are `safer_vlm.distributed`'s,
shared with train and curate.
"""

from __future__ import annotations

from dataclasses import dataclass

from safer_vlm import distributed
from safer_vlm.distributed import Ranks


@dataclass(frozen=True)
class Shard(Ranks):
    """This process's place (`Ranks`), with the few collectives eval needs."""

    def barrier(self) -> None:
        distributed.barrier(self)

    def total(self, n: int) -> int:
        """`n` summed over ranks (how many answers the whole run generated or judged now)."""
        return sum(distributed.all_gather_json(self, n))

    def any(self, flag: bool) -> bool:
        """True on every rank when it is true on any (one rank's failure stops all, no hang)."""
        return self.total(int(flag)) > 0


def current_shard() -> Shard:
    """The shard of this process; joins the process group when there is more than one process and
    says `eval: rank r of world size n` on every rank."""
    ranks = distributed.join("eval")
    return Shard(rank=ranks.rank, world=ranks.world, local=ranks.local)


def rank_device(device: str) -> str:
    """`cuda` on a multi-process launch means this rank's own GPU (`cuda:<LOCAL_RANK>`)."""
    return distributed.rank_device(device, distributed.env_ranks())

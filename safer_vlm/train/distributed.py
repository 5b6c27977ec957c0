"""Training on N processes: the accelerate state every rank must agree on, and the replica check.

`train()` creates accelerate's `PartialState` before TRL does, so it must be built the way TRL will
build it (`cpu=True` when training on the CPU): a state made without it sees no distributed setup
on a CPU-only launch, and every rank then believes it is the main process and writes `final/`.
Launch (README "Multi-process and multi-node"): `torchrun --nproc_per_node N -m safer_vlm.cli train
...` or `accelerate launch --config_file configs/accelerate/<config>.yaml -m safer_vlm.cli train ...`.
"""

from __future__ import annotations

import hashlib
from typing import Any

from safer_vlm.distributed import Ranks, say
from safer_vlm.errors import SaferVLMError


def refuse_sharded_engine_on_cpu(device: str) -> None:
    """accelerate (1.16) runs FSDP only on accelerators: on the CPU its state stays `MULTI_CPU` and
    the Trainer wraps the model in plain DDP, every rank holding the whole model (measured with
    configs/accelerate/fsdp.yaml on 2 CPU processes). That launch is refused rather than silently not
    sharded. DeepSpeed ZeRO does run on the CPU (its CPU accelerator, gloo): not refused."""
    import os

    from safer_vlm.errors import ConfigError

    if device == "cpu" and os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true":
        raise ConfigError(
            "the launcher asks for FSDP (ACCELERATE_USE_FSDP=true) but grpo.device is cpu: accelerate does not "
            "run FSDP on the CPU and would train with plain DDP instead; launch CPU runs with "
            "configs/accelerate/cpu_2proc.yaml, torchrun or a ZeRO config, and FSDP on GPUs (grpo.device: cuda)"
        )


def training_state(device: str) -> Any:
    """accelerate's PartialState for a run on `device` (`cpu`, `cuda`, ...); every rank says its rank
    and the world size, so a log shows how many processes really trained. An FSDP config on the CPU
    is refused first (`refuse_sharded_engine_on_cpu`)."""
    from accelerate import PartialState

    refuse_sharded_engine_on_cpu(device)
    state = PartialState(cpu=device == "cpu")
    if state.num_processes > 1:
        say(f"train: rank {state.process_index} of world size {state.num_processes} ({state.backend}, {state.device})")
    return state


def state_ranks(state: Any) -> Ranks:
    return Ranks(rank=state.process_index, world=state.num_processes, local=state.local_process_index)


def weights_fingerprint(model: Any) -> str:
    """sha256 over every parameter's name, dtype, shape and bytes: equal on two ranks exactly when
    their weights are bit-identical."""
    import torch

    h = hashlib.sha256()
    for name, p in model.named_parameters():
        t = p.detach().to("cpu").contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def check_replicas_agree(model: Any, state: Any) -> str:
    """Data-parallel replicas must hold the same weights after training. Every rank says its
    fingerprint; all raise if any two differ (a silent divergence would make `final/`, which rank 0
    alone writes, one arbitrary replica). Not for sharded engines (FSDP, ZeRO-3): there no rank holds
    the whole model."""
    from safer_vlm.distributed import all_gather_json

    mine = weights_fingerprint(model)
    ranks = state_ranks(state)
    if ranks.world <= 1:
        return mine
    say(f"train: rank {ranks.rank} weights sha256 {mine}")
    every = all_gather_json(ranks, mine)
    if len(set(every)) != 1:
        raise SaferVLMError(
            f"the {ranks.world} training processes ended with different weights ({', '.join(e[:12] for e in every)}): "
            "data-parallel replicas diverged; check that every rank runs the same config and code"
        )
    return mine

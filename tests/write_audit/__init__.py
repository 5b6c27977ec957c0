"""Launching test commands on several processes, and reading back which process wrote what."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def free_port() -> int:
    """A TCP port nobody listens on now (other test sessions on this machine launch processes too)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def audited_env(root: Path, log: Path) -> dict[str, str]:
    """The environment for a launched command whose writes under `root` are recorded in `log.<rank>`."""
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE), str(REPO)]),
        "OMP_NUM_THREADS": "1",
        "SAFER_VLM_AUDIT_ROOT": str(root),
        "SAFER_VLM_AUDIT_LOG": str(log),
    }


def writes_by_rank(log: Path) -> dict[str, list[dict]]:
    """{rank: [event, ...]} of every process that recorded something ("launcher" for the launcher)."""
    out: dict[str, list[dict]] = {}
    for f in sorted(log.parent.glob(f"{log.name}.*")):
        events = [json.loads(x) for x in f.read_text().splitlines() if x.strip()]
        out[f.name.removeprefix(f"{log.name}.")] = events
    return out

"""The benchmarks' own evaluation protocols, read from their own files at run time (see files.py)."""

from __future__ import annotations

from safer_vlm.eval.official import mm_safetybench, mssbench, siuo, spa_vl, vlguard, vlsbench
from safer_vlm.eval.official.base import OfficialProtocol

OFFICIAL: dict[str, OfficialProtocol] = {
    p.name: p for p in (mm_safetybench.PROTOCOL, vlguard.PROTOCOL, vlsbench.PROTOCOL, mssbench.PROTOCOL,
                        siuo.PROTOCOL, spa_vl.PROTOCOL)
}

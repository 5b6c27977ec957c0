"""Runs one curation on the test pool of `test_pipeline.py` with the scripted policy and judge, on
however many processes launched it: `torchrun --nproc_per_node 2 -m tests.curate.mp_driver FOLDER
OUT [FAIL_AFTER]`. Each rank says which prompts it sampled; with FAIL_AFTER, rank 1's policy crashes
after that many prompts."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from tests.curate.conftest import ScriptedGenerator, ScriptedJudge
from tests.curate.test_pipeline import QUIET, make_config


def main() -> None:
    from safer_vlm.curate.pipeline import run_curation
    from safer_vlm.distributed import say

    folder, out = Path(sys.argv[1]), sys.argv[2]
    fail_after = int(sys.argv[3]) if len(sys.argv) > 3 else None
    rank = int(os.environ.get("RANK", "0"))
    gen = ScriptedGenerator(garble=0.1, fail_after=fail_after if rank == 1 else None)
    try:
        run_curation(make_config(folder, out), generator=gen, judge=ScriptedJudge(), console=QUIET)
    finally:
        say(f"driver: rank {rank} sampled {','.join(gen.prompts_seen)}")


if __name__ == "__main__":
    main()

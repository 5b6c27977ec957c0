"""BeaverTails-V: no official policy-evaluation protocol. The official repository
(saferlhf-v/saferlhf-v) uses the `evaluation` split only as the held-out set of its reward and cost
models (pairwise accuracy, scripts/rm_v.sh and cm_v.sh); the Safe RLHF-V paper's win rates have no
published judge prompt or script. So the rubric view is what is reported, recorded as such."""

from __future__ import annotations

NOTE = ("no official policy-evaluation protocol: saferlhf-v/saferlhf-v@337d2001 uses the evaluation split "
        "only for reward/cost-model pairwise accuracy, and no judge prompt or win-rate script for the "
        "paper's policy evaluation is published; the rubric view is reported")

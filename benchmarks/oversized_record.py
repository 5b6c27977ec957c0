"""What one 5 MB question costs `data validate`, `curate` and `eval` (issue 14, item 6): each command
runs as a child process on a 3-record file, with and without the oversized record, side by side;
wall time and peak memory come from the kernel's own accounting of the child (`os.wait4`).

Before the loader limits, `curate` tokenised the 5 M characters, grew to 24 GB and was OOM-killed;
the figure to read is the difference between the two columns (the refusal's cost), which the issue
bounds at 5 s and 1 GiB.

Run: PYTHONPATH=. python benchmarks/oversized_record.py [--out benchmarks/logs/oversized_record.log]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
from datetime import date
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=None, help="also write the table here")
    args = parser.parse_args()
    from safer_vlm.models.tiny import build_tiny_vlm
    from tests.child_usage import commands, run_measured, write_records

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model = build_tiny_vlm(work / "model", seed=0)
        rows = []
        for name in ("data validate", "curate", "eval"):
            figures = {}
            for tag, huge in (("without", False), ("with", True)):
                data = write_records(work / f"{tag}.jsonl", huge)
                rc, secs, rss = run_measured(commands(work, model, data, tag)[name], work / f"{name}_{tag}.log")
                if rc != 0:
                    raise SystemExit(f"{name} ({tag} the record) exited {rc}:\n{(work / f'{name}_{tag}.log').read_text()}")
                figures[tag] = (secs, rss)
            (t0, m0), (t1, m1) = figures["without"], figures["with"]
            rows.append(f"| {name} | {t0:.2f} s, {m0 / 2**20:.0f} MiB | {t1:.2f} s, {m1 / 2**20:.0f} MiB | "
                        f"{t1 - t0:+.2f} s, {(m1 - m0) / 2**20:+.0f} MiB |")
    table = "\n".join([
        f"{date.today()}, {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
        "| command | without the 5 MB record | with it | its cost |",
        "|---|---|---|---|", *rows])
    print(table)
    if args.out:
        args.out.write_text(table + "\n")


if __name__ == "__main__":
    main()

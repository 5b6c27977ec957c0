"""QI-Box curation on 2 real processes (torchrun, gloo) against the same run on 1 process.

The launched processes record every file they write under the output folder (`tests/write_audit`),
so "the main process alone writes results" is checked on what rank 1 did."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.curate.conftest import ScriptedGenerator
from tests.curate.test_pipeline import make_config, run
from tests.write_audit import audited_env, free_port, writes_by_rank

RANK_LINE = re.compile(r"curate: rank (\d+) of world size (\d+)\n")
SAMPLED = re.compile(r"driver: rank (\d+) sampled (.*)\n")


def _torchrun(folder: Path, out: str, *extra: str) -> subprocess.CompletedProcess:
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or shutil.which("torchrun")
    assert torchrun, "torchrun is installed with torch"
    log = folder / f"audit-{out}" / "writes"
    log.parent.mkdir()
    cmd = [torchrun, "--nproc_per_node", "2", "--master_port", str(free_port()), "-m", "tests.curate.mp_driver",
           str(folder), out, *extra]
    return subprocess.run(cmd, env=audited_env(folder / out, log), cwd=folder, capture_output=True, text=True,
                          timeout=300)


def _selected(out: Path) -> list[str]:
    return [json.loads(x)["id"] for x in (out / "curated.jsonl").read_text().splitlines()]


def _stats(out: Path) -> dict[str, tuple]:
    rows = [json.loads(x) for x in (out / "qibox_stats.jsonl").read_text().splitlines()]
    return {r["uid"]: (r["rewards"], r["quality"], r["instability"], r["selected"]) for r in rows}


def _sampled(output: str) -> dict[str, list[str]]:
    return {rank: [x for x in ids.split(",") if x] for rank, ids in SAMPLED.findall(output)}


@pytest.mark.slow
def test_two_process_curation_selects_what_one_process_selects(tmp_path):
    """Catches: scoring that does not really run on 2 processes, or where both ranks sample the same
    prompts; sampling that depends on which rank drew a prompt (seeds per rank, not per prompt); a
    merge that loses or reorders prompts; rank 1 writing results, reports or the cache's settings."""
    one = make_config(tmp_path, "one")  # also writes the pool under tmp_path/data
    run(one)
    proc = _torchrun(tmp_path, "two")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert sorted(RANK_LINE.findall(out)) == [("0", "2"), ("1", "2")], out[-3000:]
    sampled = _sampled(out)
    assert sorted(sampled) == ["0", "1"] and sampled["0"] and sampled["1"]
    assert not set(sampled["0"]) & set(sampled["1"])  # each prompt sampled once, by one rank
    two = tmp_path / "two"
    stats_one, stats_two = _stats(one.output_dir), _stats(two)
    assert sorted(set(sampled["0"]) | set(sampled["1"])) == sorted(u.split("/", 1)[1] for u in stats_one)
    assert stats_two == stats_one  # same answers' rewards, statistics and choice for every prompt
    assert _selected(two) == _selected(one.output_dir) and _selected(two)
    writes = writes_by_rank(tmp_path / "audit-two" / "writes")
    rank1 = [e for e in writes["1"] if not (e["path"].startswith("qibox_cache/") or e["path"] == "qibox_cache")]
    assert rank1 == [], rank1
    assert not [e for e in writes["1"] if e["path"] == "qibox_cache/meta.json"]
    rank0 = {e["path"] for e in writes["0"]}
    assert {"curated.jsonl", "qibox_stats.jsonl", "curation.json", "report.md", "config.json"} <= rank0


@pytest.mark.slow
def test_two_process_curation_killed_on_one_rank_stops_and_resumes_on_one_process(tmp_path):
    """Catches: a rank failure that leaves the other rank waiting forever (the launch would time out)
    or exiting 0; prompts scored before the crash that are sampled again on resume; a resumed
    selection that differs from an uninterrupted one."""
    reference = make_config(tmp_path, "ref")
    run(reference)
    proc = _torchrun(tmp_path, "cut", "2")  # rank 1's policy crashes after 2 prompts
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "scripted crash" in out, out[-3000:]
    assert sorted(RANK_LINE.findall(out)) == [("0", "2"), ("1", "2")]
    assert "OtherRankFailed" in out  # rank 0 stopped because rank 1 failed, and said so
    before = _sampled(out)
    cached_before = {p.name for p in (tmp_path / "cut" / "qibox_cache").glob("*.json")} - {"meta.json"}
    assert len(cached_before) >= len(before["1"]) > 0
    gen = ScriptedGenerator(garble=0.1)
    run(make_config(tmp_path, "cut"), gen)  # resume on one process
    assert not set(gen.prompts_seen) & set(before["0"] + before["1"])  # nothing scored before is redone
    assert _selected(tmp_path / "cut") == _selected(reference.output_dir)
    assert _stats(tmp_path / "cut") == _stats(reference.output_dir)

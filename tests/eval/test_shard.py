"""Evaluation across processes (issue 16, item 2): `eval` on 2 processes (torchrun, gloo, CPU)
splits each benchmark's items across ranks and gives the same results.json as 1 process; a
2-process eval killed midway resumes on 1 process without regenerating stored answers."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from safer_vlm.eval.config import EvalConfig
from safer_vlm.eval.shard import Shard

BENCHES = ("vlguard", "siuo", "spa_vl", "jsonl")
VOLATILE = {"seconds", "created"}


def _config(tmp_path: Path, model: Path, roots, judge: Path, name: str) -> Path:
    cfg = EvalConfig(model=str(model), dtype="float32", batch_size=2, out=tmp_path / name, judges=[judge],
                     image_cache=tmp_path / "images", sampling={"max_new_tokens": 6, "temperature": 0.0},
                     benchmarks=[{"name": b, "path": roots[b]} for b in BENCHES])
    path = tmp_path / f"{name}.json"
    path.write_text(cfg.model_dump_json())
    return path


def _free_port() -> int:
    """A port nothing listens on now (a fixed one collides with another suite's torchrun)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _launch(config: Path, nproc: int, *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc), "--master_port",
           str(_free_port()), "-m", "tests.eval.mp_eval", "--config", str(config), *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)


def _generated(tmp_path: Path, name: str, rank: int) -> list[str]:
    path = tmp_path / f"generated.{name}.rank{rank}.jsonl"
    return [i for line in path.read_text().splitlines() for i in json.loads(line)] if path.is_file() else []


def _stable(obj):
    if isinstance(obj, dict):
        return {k: _stable(v) for k, v in obj.items() if k not in VOLATILE}
    if isinstance(obj, list):
        return [_stable(v) for v in obj]
    return obj


def _results(tmp_path: Path, name: str) -> dict:
    return _stable(json.loads((tmp_path / name / "results.json").read_text()))


def _ranks_that_ran(output: str) -> set[tuple[int, int]]:
    return {(int(r), int(w)) for r, w in re.findall(r"eval: rank (\d+) of world size (\d+)", output)}


def test_shards_are_disjoint_and_cover_every_item():
    items = list(range(11))
    shards = [Shard(r, 3).mine(items) for r in range(3)]
    assert sorted(i for s in shards for i in s) == items and Shard().mine(items) == items


@pytest.mark.slow
def test_two_process_eval_equals_one_process_and_a_killed_one_resumes_on_one(tmp_path, tiny_model_dir,
                                                                             benchmark_roots, rules_judge):
    """Defect: eval ran on one process only; under torchrun each rank ran the whole eval and both
    wrote results. Now each rank answers its own items (asserted: 2 ranks ran, disjoint items),
    the main process merges, and the results equal a 1-process run's; a 2-process run killed
    midway resumes on 1 process and regenerates nothing that was stored."""
    one = _launch(_config(tmp_path, tiny_model_dir, benchmark_roots, rules_judge, "one"), 1)
    assert one.returncode == 0, one.stderr[-3000:]
    two = _launch(_config(tmp_path, tiny_model_dir, benchmark_roots, rules_judge, "two"), 2)
    assert two.returncode == 0, two.stderr[-3000:]
    assert _ranks_that_ran(two.stdout + two.stderr) == {(0, 2), (1, 2)}
    r0, r1 = _generated(tmp_path, "two", 0), _generated(tmp_path, "two", 1)
    assert r0 and r1 and not set(r0) & set(r1)  # each rank generated for different items
    assert sorted(r0 + r1) == sorted(_generated(tmp_path, "one", 0))
    expected = json.loads(json.dumps(_results(tmp_path, "one")).replace(str(tmp_path / "one"), "OUT"))
    got = json.loads(json.dumps(_results(tmp_path, "two")).replace(str(tmp_path / "two"), "OUT"))
    assert got == expected

    cfg = _config(tmp_path, tiny_model_dir, benchmark_roots, rules_judge, "killed")
    killed = _launch(cfg, 2, "--kill-rank", "1", "--kill-call", "3")
    assert killed.returncode != 0
    assert _ranks_that_ran(killed.stdout + killed.stderr) == {(0, 2), (1, 2)}
    stored = {(f.parent.name, json.loads(line)["item"]) for f in (tmp_path / "killed").glob("*/answers*.jsonl")
              for line in f.read_text().splitlines() if line.endswith("}")}
    assert {f.name for f in (tmp_path / "killed").glob("*/answers.rank1.jsonl")}  # rank 1 stored its own
    (tmp_path / "generated.killed.rank0.jsonl").unlink(missing_ok=True)
    resumed = _launch(cfg, 1)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    again = _generated(tmp_path, "killed", 0)
    stored = {item for _, item in stored}  # item ids are unique across the fixture benchmarks
    assert again and not set(again) & stored  # nothing stored was regenerated
    got = json.loads(json.dumps(_results(tmp_path, "killed")).replace(str(tmp_path / "killed"), "OUT"))
    for bench in expected["benchmarks"]:  # what differs is only how many answers this run made
        for key in ("generated_now",):
            got["benchmarks"][bench].pop(key), expected["benchmarks"][bench].pop(key)
        for j in got["benchmarks"][bench]["judges"]:
            got["benchmarks"][bench]["judges"][j].pop("judged_now")
            expected["benchmarks"][bench]["judges"][j].pop("judged_now")
    assert got == expected

"""JudgeCache: atomic one-file-per-key entries, corrupt entries are misses, keys cover every input."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

from safer_vlm.judge.base import Verdict
from safer_vlm.judge.cache import JudgeCache, cache_key


def test_round_trip_and_corrupt_entry_is_a_miss(tmp_path):
    cache = JudgeCache(tmp_path)
    key = cache_key("j", "v1-abc", ["sys", "user"], ["h1"], "resp", {"t": 0})
    assert cache.get(key) is None
    cache.put(key, '{"safety": 9}', Verdict(parse_ok=False, rationale="missing"))
    assert cache.get(key) == '{"safety": 9}'
    entry = json.loads(next(tmp_path.rglob(f"{key}.json")).read_text())
    assert entry["verdict"]["rationale"] == "missing"
    next(tmp_path.rglob(f"{key}.json")).write_text('{"raw": "trunc')
    assert cache.get(key) is None


def test_key_changes_with_every_input():
    base = ("j", "v1-abc", ["sys", "user"], ["h1"], "resp", {"t": 0})
    keys = {cache_key(*base)}
    for i, other in enumerate(["j2", "v1-abd", ["sys", "user2"], ["h2"], "resp2", {"t": 1}]):
        args = list(base)
        args[i] = other
        keys.add(cache_key(*args))
    assert len(keys) == 7


def test_concurrent_writers_leave_whole_entries(tmp_path):
    cache = JudgeCache(tmp_path)
    key = cache_key("j", "r", "p", [], "x")

    def write(i):
        JudgeCache(tmp_path).put(key, f"reply {i}" * 1000, Verdict(parse_ok=True))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(write, range(64)))
    assert cache.get(key).startswith("reply ")
    assert len(cache) == 1 and not list(tmp_path.rglob("*.tmp"))

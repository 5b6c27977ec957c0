import json
import math

import pytest

from safer_vlm.curate.qibox import (
    CacheMismatchError,
    PromptStats,
    QIBox,
    QIBoxConfig,
    ScoreCache,
    prompt_seed,
    reward_stats,
    score_prompts,
    select,
)
from safer_vlm.judge.base import Verdict

from .conftest import ScriptedGenerator, ScriptedJudge, sample


def st(uid, q, s, category="a", dropped=None):
    return PromptStats(uid=uid, source="pool", category=category, subcategory=None, k=4, rewards=[],
                       n_parse_failures=0, n_transport_failures=0, n_unsafe=0,
                       quality=None if dropped else q, instability=None if dropped else s, dropped=dropped)


BOX = QIBox(q_min=0.3, q_max=0.7, s_min=0.1)


def test_reward_stats_is_population_std():
    mean, std = reward_stats([0.0, 1.0])
    assert mean == 0.5 and std == 0.5
    mean, std = reward_stats([0.2, 0.4, 0.9])
    assert std == pytest.approx(math.sqrt(sum((x - 0.5) ** 2 for x in [0.2, 0.4, 0.9]) / 3))


def test_box_edges_are_inclusive():
    stats = [st("lo", 0.3, 0.1), st("hi", 0.7, 0.5), st("below", 0.2999, 0.5), st("above", 0.7001, 0.5),
             st("flat", 0.5, 0.0999), st("gone", 0, 0, dropped="too few usable verdicts")]
    sel = select(stats, BOX, target_size=None)
    assert [x.uid for x in sel.selected] == ["lo", "hi"]
    assert sel.left_out == {"dropped: too few usable verdicts": 1, "instability below s_min": 1,
                            "quality above q_max": 1, "quality below q_min": 1}
    assert sel.in_box == 2


def test_balance_by_category_round_robin_prefers_instability():
    stats = [st(f"a{i}", 0.5, 0.1 + i / 100, "a") for i in range(6)]
    stats += [st(f"b{i}", 0.5, 0.5 + i / 100, "b") for i in range(2)]
    stats += [st(f"c{i}", 0.5, 0.2 + i / 100, "c") for i in range(3)]
    stats.append(st("none", 0.5, 0.9, None))
    sel = select(stats, BOX, target_size=8, balance_by="category", seed=1)
    # 4 groups: none (1 member) and b (2) run out; a and c share the rest
    assert sel.groups_in_box == {"a": 6, "b": 2, "c": 3, "uncategorised": 1}
    assert sel.groups_selected == {"a": 3, "b": 2, "c": 2, "uncategorised": 1} or \
        sel.groups_selected == {"a": 2, "b": 2, "c": 3, "uncategorised": 1}
    chosen = {x.uid for x in sel.selected}
    # highest instability first within a group
    a_taken = sorted(u for u in chosen if u.startswith("a"))
    assert a_taken == [f"a{i}" for i in range(6 - len(a_taken), 6)]
    assert sel.left_out["over target size"] == 4
    # output keeps the input order
    pos = {x.uid: i for i, x in enumerate(stats)}
    assert [pos[x.uid] for x in sel.selected] == sorted(pos[x.uid] for x in sel.selected)


def test_equal_quota_when_groups_are_large():
    stats = [st(f"{g}{i}", 0.5, 0.2, g) for g in "abcd" for i in range(10)]
    sel = select(stats, BOX, target_size=10, balance_by="category", seed=3)
    counts = sorted(sel.groups_selected.values())
    assert counts == [2, 2, 3, 3] and len(sel.selected) == 10


def test_selection_deterministic_with_seed_and_ties_depend_on_it():
    stats = [st(f"p{i}", 0.5, 0.2, "a") for i in range(50)]
    one = [x.uid for x in select(stats, BOX, target_size=5, seed=7).selected]
    assert one == [x.uid for x in select(list(stats), BOX, target_size=5, seed=7).selected]
    others = {tuple(x.uid for x in select(stats, BOX, target_size=5, seed=s).selected) for s in range(5)}
    assert len(others) > 1


def test_no_balance_takes_globally_most_unstable():
    stats = [st("x", 0.5, 0.3, "a"), st("y", 0.5, 0.2, "a"), st("z", 0.5, 0.9, "b")]
    assert [x.uid for x in select(stats, BOX, target_size=2, balance_by=None).selected] == ["x", "z"]


def test_box_and_config_validation():
    with pytest.raises(ValueError):
        QIBox(q_min=0.8, q_max=0.2)
    with pytest.raises(ValueError):
        QIBoxConfig(k=2, min_valid=3)


def _samples(root, n):
    return [sample(root, f"s{i}", f"question number {i}", [], category="abc"[i % 3]) for i in range(n)]


def _settings(**kw):
    return {"k": 4, "seed": 0, "generator": "scripted", "judge": "scripted-v1", **kw}


def test_parse_failures_are_counted_not_scored(tmp_path, rubric):
    cfg = QIBoxConfig(k=4, min_valid=3)
    res = score_prompts(_samples(tmp_path, 12), ScriptedGenerator(garble=0.4), ScriptedJudge(), rubric, cfg,
                        ScoreCache(tmp_path / "cache", _settings()), seed=0)
    total_fail = sum(s.n_parse_failures for s in res.stats)
    assert total_fail > 0
    for s in res.stats:
        assert s.n_valid + s.n_parse_failures == 4
        if s.n_valid < 3:
            assert s.dropped == "too few usable verdicts" and s.quality is None
        else:
            assert s.dropped is None and s.quality == pytest.approx(sum(s.rewards) / s.n_valid)
    assert any(s.dropped for s in res.stats)


def test_transport_failures_are_not_cached(tmp_path, rubric):
    class DownJudge(ScriptedJudge):
        async def judge(self, batch):
            return [Verdict.transport_failure(self.judge_id, "connection refused") for _ in batch]

    cache = ScoreCache(tmp_path / "cache", _settings())
    res = score_prompts(_samples(tmp_path, 2), ScriptedGenerator(), DownJudge(), rubric, QIBoxConfig(), cache, 0)
    assert [s.dropped for s in res.stats] == ["judge transport failure"] * 2
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["meta.json"]


def test_cache_mismatch_is_an_error(tmp_path):
    ScoreCache(tmp_path / "c", _settings())
    ScoreCache(tmp_path / "c", _settings())  # same settings: fine
    with pytest.raises(CacheMismatchError, match="differing: k"):
        ScoreCache(tmp_path / "c", _settings(k=8))


def test_resume_after_crash_equals_uninterrupted(tmp_path, rubric):
    samples = _samples(tmp_path, 10)
    cfg = QIBoxConfig(k=4, max_concurrency=2)
    full = score_prompts(samples, ScriptedGenerator(garble=0.1), ScriptedJudge(), rubric, cfg,
                         ScoreCache(tmp_path / "full", _settings()), seed=5)

    crashing = ScriptedGenerator(garble=0.1, fail_after=4)
    with pytest.raises(RuntimeError, match="scripted crash"):
        score_prompts(samples, crashing, ScriptedJudge(), rubric, cfg,
                      ScoreCache(tmp_path / "resumed", _settings()), seed=5)
    assert len(list((tmp_path / "resumed").glob("*.json"))) == 1 + 4  # meta + every generated prompt
    again = ScriptedGenerator(garble=0.1)
    resumed = score_prompts(samples, again, ScriptedJudge(), rubric, cfg,
                            ScoreCache(tmp_path / "resumed", _settings()), seed=5)
    assert again.prompts_seen == [f"s{i}" for i in range(4, 10)]  # finished prompts not redone
    assert (resumed.reused, resumed.scored) == (4, 6)
    assert [s.to_dict() for s in resumed.stats] == [s.to_dict() for s in full.stats]
    for p in (tmp_path / "full").glob("*.json"):
        assert json.loads(p.read_text()) == json.loads((tmp_path / "resumed" / p.name).read_text())


def test_prompt_seed_depends_on_seed_and_uid():
    assert prompt_seed(0, "a/1") == prompt_seed(0, "a/1")
    assert len({prompt_seed(0, "a/1"), prompt_seed(1, "a/1"), prompt_seed(0, "a/2")}) == 3

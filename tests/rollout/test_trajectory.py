from __future__ import annotations

import pytest
from rollout_fakes import CountingJudge, ScriptedGenerator, render

from safer_vlm.errors import DataError
from safer_vlm.judge.rubric import Rubric
from safer_vlm.rollout.config import RolloutConfig
from safer_vlm.rollout.safety_aware import SafetyAwareRollout
from safer_vlm.rollout.trajectory import TrajectoryWriter, read_trajectories


def rollout(samples, **cfg):
    ro = SafetyAwareRollout(CountingJudge(), Rubric.default(), RolloutConfig(**cfg), renderer=render)
    return ro.run(ScriptedGenerator(), samples, 3)


def test_round_trip_appends_per_step(tmp_path, make_sample, image_root):
    log = tmp_path / "run" / "trajectories.jsonl"
    writer = TrajectoryWriter(log)
    step0 = rollout([make_sample("a", ["unsafe", "safe", "garbled"]), make_sample("b", ["safe"])])
    step1 = rollout([make_sample("c", ["unsafe"], reflect=["unsafe"])], keep_unsafe_corrections=True)
    assert writer.append(0, step0.groups) == 2
    assert writer.append(1, step1.groups) == 1
    back = list(read_trajectories(log))
    assert [lg.step for lg in back] == [0, 0, 1]
    for lg, orig in zip(back, [*step0.groups, *step1.groups], strict=True):
        g = lg.group
        assert g.sample == orig.sample and g.sample.root == image_root
        assert [m.uid for m in g.members] == [m.uid for m in orig.members]
        assert [s.text for s in g.generated] == [s.text for s in orig.generated]
        assert [s.verdict for s in g.generated] == [s.verdict for s in orig.generated]
        assert [s.reward for s in g.generated] == [s.reward for s in orig.generated]
        assert [(s.reflected, s.corrects, s.parent_uid, s.round) for s in g.generated] == [
            (s.reflected, s.corrects, s.parent_uid, s.round) for s in orig.generated
        ]
        assert [s.reflection_prompt for s in g.corrections] == [s.reflection_prompt for s in orig.corrections]
    assert back[0].group.originals[2].reward is None  # a parse failure stays a parse failure
    assert back[0].group.originals[2].unsafe is None and back[0].group.originals[0].unsafe is True


def test_logs_of_the_earlier_format_read_back(tmp_path, make_sample):
    """Logs written before `unsafe` was derived from `unsafe_parts` carried both, with
    `unsafe: null, unsafe_parts: []` for an unjudged answer. Catches reading such an answer back as
    judged safe (the viewer would badge a parse failure "safe")."""
    import json

    log = tmp_path / "old.jsonl"
    TrajectoryWriter(log).append(0, rollout([make_sample("a", ["unsafe", "safe", "garbled"])]).groups)
    rec = json.loads(log.read_text())
    for answer in rec["originals"] + rec["corrections"]:
        parts = answer["unsafe_parts"]
        answer["unsafe"] = None if parts is None else bool(parts)
        answer["unsafe_parts"] = parts or []
    log.write_text(json.dumps(rec) + "\n")
    (back,) = read_trajectories(log)
    assert [s.unsafe for s in back.group.originals] == [True, False, None]
    assert back.group.originals[0].unsafe_parts == ["answer"]


def test_ids_only_when_asked(tmp_path, make_sample):
    res = rollout([make_sample("a", ["safe"])])
    TrajectoryWriter(tmp_path / "n.jsonl").append(0, res.groups)
    TrajectoryWriter(tmp_path / "y.jsonl", with_ids=True).append(0, res.groups)
    (n,) = read_trajectories(tmp_path / "n.jsonl")
    (y,) = read_trajectories(tmp_path / "y.jsonl")
    assert n.group.members[0].generation.completion_ids == []
    assert y.group.members[0].generation.completion_ids == res.groups[0].members[0].generation.completion_ids


def test_bad_lines_name_file_and_line(tmp_path, make_sample):
    log = tmp_path / "t.jsonl"
    TrajectoryWriter(log).append(0, rollout([make_sample("a", ["safe"])]).groups)
    with log.open("a") as fh:
        fh.write("{not json\n")
        fh.write('{"step": 1}\n')
    with pytest.raises(DataError, match=r"t.jsonl:2: not valid JSON"):
        list(read_trajectories(log))
    problems: list[str] = []
    assert len(list(read_trajectories(log, problems))) == 1
    assert len(problems) == 2 and "t.jsonl:3: not a trajectory record" in problems[1]
    with pytest.raises(DataError, match="not found"):
        list(read_trajectories(tmp_path / "missing.jsonl"))


def test_round_trip_keeps_unsafe_parts_references_and_contrast_members(tmp_path, make_sample):
    log = tmp_path / "t.jsonl"
    res = rollout([make_sample("a", ["badthink", "unsafe", "safe"], reflect=["refers"])], policy="contrast", on_reference="train")
    TrajectoryWriter(log).append(0, res.groups)
    (back,) = read_trajectories(log)
    g, orig = back.group, res.groups[0]
    assert [s.unsafe_parts for s in g.generated] == [s.unsafe_parts for s in orig.generated]
    assert g.originals[0].unsafe_parts == ["reasoning"] and g.originals[1].unsafe_parts == ["answer"]
    assert [s.refers_back for s in g.corrections] == ["My previous answer"] * 2
    assert [m.uid for m in g.members] == [m.uid for m in orig.members]
    assert [s.reward for s in g.generated] == [s.reward for s in orig.generated]

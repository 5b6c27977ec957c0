"""Trajectory log: one JSON line per rollout group (prompt, every answer, verdicts, rewards,
reflection prompts), appended per training step and read back by the viewer and reports."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from safer_vlm.data.schema import SafetySample
from safer_vlm.errors import DataError
from safer_vlm.rollout.answers import Answer, RolloutGroup


@dataclass
class LoggedGroup:
    """A group as read back from the log, with the step it was rolled out at."""

    step: int
    group: RolloutGroup


def group_to_record(step: int, group: RolloutGroup, with_ids: bool = False) -> dict:
    """JSON-ready record of one group; `root` is kept so the viewer can find the images."""
    sample = group.sample
    return {
        "step": step,
        "sample_index": group.sample_index,
        "sample": sample.model_dump(mode="json"),
        "root": None if sample.root is None else str(sample.root),
        "originals": [s.to_dict(with_ids) for s in group.originals],
        "corrections": [s.to_dict(with_ids) for s in group.corrections],
        "members": [s.uid for s in group.members],
    }


def record_to_group(rec: dict) -> LoggedGroup:
    sample = SafetySample.model_validate(rec["sample"])
    if rec.get("root"):
        sample.root = Path(rec["root"])
    originals = [Answer.from_dict(d) for d in rec["originals"]]
    corrections = [Answer.from_dict(d) for d in rec["corrections"]]
    by_uid = {s.uid: s for s in (*originals, *corrections)}
    group = RolloutGroup(
        sample=sample,
        sample_index=rec["sample_index"],
        originals=originals,
        corrections=corrections,
        members=[by_uid[u] for u in rec["members"]],
    )
    return LoggedGroup(step=int(rec["step"]), group=group)


class TrajectoryWriter:
    """Appends groups to a JSONL file (never truncates it: a resumed run keeps its history)."""

    def __init__(self, path: Path, with_ids: bool = False) -> None:
        self.path = Path(path)
        self.with_ids = with_ids

    def append(self, step: int, groups: Iterable[RolloutGroup]) -> int:
        """Append one line per group; returns how many were written."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        n = 0
        with self.path.open("a", encoding="utf-8") as fh:
            for g in groups:
                fh.write(json.dumps(group_to_record(step, g, self.with_ids), ensure_ascii=False) + "\n")
                n += 1
        return n


def read_trajectories(path: Path, problems: list[str] | None = None) -> Iterator[LoggedGroup]:
    """Read a trajectory log. A bad line raises DataError naming file, line and problem, unless
    `problems` is given: then the line is recorded there and reading goes on."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"trajectory log not found: {path}")
    with path.open("r", encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield record_to_group(json.loads(line))
            except json.JSONDecodeError as exc:
                msg = f"{path}:{lineno}: not valid JSON ({exc.msg})"
            except (KeyError, TypeError, ValueError) as exc:
                msg = f"{path}:{lineno}: not a trajectory record ({type(exc).__name__}: {str(exc).splitlines()[0]})"
            else:
                continue
            if problems is None:
                raise DataError(msg)
            problems.append(msg)

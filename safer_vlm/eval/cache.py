"""The eval folder's answer and verdict records: append-only JSONL, flushed after every batch, so a
killed run resumes where it stopped and a new judge re-judges stored answers without regenerating.

Answers are keyed by (generation key, item id): the generation key fingerprints model, policy,
system prompt and sampling, so the store is per model x benchmark x item. Verdicts are keyed by
(judge id, rubric fingerprint, item id, answer index, answer hash). Judge backends keep their own
reply caches (`cache_dir` in the judge YAML); these files are the run's results, read back on resume.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from safer_vlm.judge.base import Verdict


def text_sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Records of a JSONL file; a truncated last line (a kill mid-write) is ignored."""
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


def _append(path: Path, records: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    torn = False
    if path.is_file() and path.stat().st_size > 0:
        with path.open("rb") as fh:
            fh.seek(-1, 2)
            torn = fh.read(1) != b"\n"
    with path.open("a", encoding="utf-8") as fh:
        if torn:  # a kill cut the last line: end it, so the next record starts on its own line
            fh.write("\n")
        for rec in records:
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
        fh.flush()


class AnswerStore:
    """`answers.jsonl`: one record per item, `{gen_key, item, answers: [text, ...]}`."""

    def __init__(self, path: Path, gen_key: str) -> None:
        self.path = path
        self.gen_key = gen_key
        self.answers: dict[str, list[str]] = {
            r["item"]: list(r["answers"]) for r in _read_jsonl(path)
            if r.get("gen_key") == gen_key and isinstance(r.get("answers"), list)
        }

    def add(self, items: list[tuple[str, list[str]]]) -> None:
        _append(self.path, [{"gen_key": self.gen_key, "item": i, "answers": a} for i, a in items])
        self.answers.update(dict(items))


class VerdictStore:
    """`verdicts/<judge>.jsonl`: `{judge, rubric, item, k, answer_sha, verdict}` per judged answer."""

    def __init__(self, path: Path, judge_id: str, rubric_fp: str) -> None:
        self.path = path
        self.judge_id = judge_id
        self.rubric_fp = rubric_fp
        self.verdicts: dict[tuple[str, int, str], Verdict] = {}
        for r in _read_jsonl(path):
            if r.get("judge") == judge_id and r.get("rubric") == rubric_fp:
                self.verdicts[(r["item"], int(r["k"]), r["answer_sha"])] = Verdict.from_dict(r["verdict"])

    @staticmethod
    def key(item: str, k: int, response: str) -> tuple[str, int, str]:
        return (item, k, text_sha(response))

    def add(self, entries: list[tuple[tuple[str, int, str], Verdict]]) -> None:
        _append(self.path, [
            {"judge": self.judge_id, "rubric": self.rubric_fp, "item": key[0], "k": key[1],
             "answer_sha": key[2], "verdict": v.to_dict()}
            for key, v in entries
        ])
        self.verdicts.update(dict(entries))

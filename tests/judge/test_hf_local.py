"""HFLocalJudge on the tiny random model: its replies are garbage, so every verdict must be a
recorded parse failure (never a score), and the cache must make a rerun generate nothing."""

from __future__ import annotations

import asyncio

from safer_vlm.judge.base import JudgeItem
from safer_vlm.judge.batch import tally
from safer_vlm.judge.config import HFLocalJudgeConfig
from safer_vlm.judge.factory import build_judge
from safer_vlm.judge.hf_local import HFLocalJudge


def test_tiny_model_judge_counts_parse_failures(tiny_model_dir, tiny_dataset, rubric, tmp_path):
    cfg = HFLocalJudgeConfig(
        model_path=str(tiny_model_dir), max_new_tokens=8, batch_size=2, cache_dir=tmp_path / "c"
    )
    judge = build_judge(cfg, rubric)
    assert isinstance(judge, HFLocalJudge)
    items = [JudgeItem(s, "<think>t</think><answer>a</answer>") for s in tiny_dataset.samples]
    (tiny_dataset.root / "images" / "broken.png").write_bytes(b"nope")
    broken = tiny_dataset.samples[0].model_copy(update={"id": "b", "images": ["images/broken.png"]})
    items.append(JudgeItem(broken, "x"))
    verdicts = asyncio.run(judge.judge(items))
    assert len(verdicts) == 4
    assert tally(verdicts) == {"ok": 0, "parse_failures": 3, "errors": 1}
    assert all(v.scores == {} and v.rationale for v in verdicts[:3])
    assert verdicts[3].extra["error_kind"] == "input"

    calls = []
    judge._generate = lambda chats, its: calls.append(chats) or []  # type: ignore[method-assign]
    again = asyncio.run(judge.judge(items[:3]))
    assert calls == [] and all(v.extra.get("cached") for v in again)

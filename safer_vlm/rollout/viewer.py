"""Trajectory viewer: one self-contained HTML page (images embedded as base64, no external assets,
every text HTML-escaped) showing sampled groups: image, question, each answer with its reward
breakdown, which part was unsafe (reasoning, answer) and its group advantage; for a `contrast`
group each unsafe original and its correction side by side with both advantages (the pair GRPO
pushes apart); and for every correction the unsafe answer, the reflection prompt and the
correction side by side."""

from __future__ import annotations

import base64
import html
import io
import random
from collections.abc import Sequence
from pathlib import Path

from safer_vlm.errors import DataError
from safer_vlm.rollout.answers import Answer, RolloutGroup
from safer_vlm.rollout.metrics import member_advantages, rollout_metrics
from safer_vlm.rollout.reflection import message_text
from safer_vlm.rollout.trajectory import LoggedGroup, read_trajectories

#: Longest side of an embedded image, in pixels (keeps the page small).
THUMBNAIL_PX = 320

_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;background:#fafafa}
h1{font-size:1.4em} h2{font-size:1.1em;margin:0 0 .4em}
.group{background:#fff;border:1px solid #ccc;border-radius:6px;padding:1em;margin:1em 0}
.meta{color:#666;font-size:.85em}
.question{font-weight:600;margin:.5em 0;white-space:pre-wrap}
.images img{max-width:320px;max-height:320px;margin:.2em;border:1px solid #ddd}
.answers{display:flex;flex-wrap:wrap;gap:.6em}
.answer{border:1px solid #ddd;border-radius:4px;padding:.5em;flex:1 1 280px;max-width:480px}
.answer.discarded{opacity:.6;border-style:dashed}
.text{white-space:pre-wrap;font-family:ui-monospace,monospace;font-size:.85em;background:#f4f4f4;padding:.4em}
.badge{display:inline-block;padding:0 .4em;border-radius:3px;font-size:.8em;color:#fff}
.safe{background:#2a7} .unsafe{background:#c33} .unknown{background:#888} .corr{background:#36c}
.side{display:grid;grid-template-columns:1fr 1fr 1fr;gap:.6em;margin:.6em 0}
.pair{display:grid;grid-template-columns:1fr 1fr;gap:.6em;margin:.6em 0}
.pair>div{border:1px solid #ddd;border-radius:4px;padding:.5em;background:#fff}
.adv{font-weight:600} .adv.neg{color:#c33} .adv.pos{color:#2a7}
.side>div{border:1px solid #ddd;border-radius:4px;padding:.5em;background:#fff}
table.parts{font-size:.8em;border-collapse:collapse} table.parts td{padding:0 .5em 0 0}
.problems{color:#a00}
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def embed_image(path: Path, max_px: int = THUMBNAIL_PX) -> str:
    """An `<img>` with the picture as a base64 PNG data URI, or a visible note if it cannot be read."""
    from safer_vlm.data.images import load_image

    try:
        im = load_image(path)
    except DataError as exc:
        return f'<span class="problems">image unavailable: {_e(exc)}</span>'
    im.thumbnail((max_px, max_px))
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img alt="{_e(path.name)}" src="data:image/png;base64,{data}">'


def _images(group: RolloutGroup) -> str:
    sample = group.sample
    if not sample.images:
        return ""
    try:
        paths = sample.image_paths()
    except (DataError, ValueError) as exc:
        return f'<div class="problems">images unavailable: {_e(exc)}</div>'
    return '<div class="images">' + "".join(embed_image(p) for p in paths) + "</div>"


def _badge(s: Answer) -> str:
    if s.unsafe is None:
        label = "parse failure" if not s.verdict.parse_ok or s.verdict.error else "unknown"
        return f'<span class="badge unknown">{_e(label)}</span>'
    if not s.unsafe:
        return '<span class="badge safe">safe</span>'
    parts = " + ".join(s.unsafe_parts) or "flagged"
    return f'<span class="badge unsafe">unsafe: {_e(parts)}</span>'


def _advantage(value: float | None) -> str:
    """A member's group advantage (TRL's `scale_rewards=group` arithmetic), signed and coloured."""
    if value is None:
        return '<span class="meta">advantage n/a (no reward)</span>'
    cls = "neg" if value < -1e-6 else "pos" if value > 1e-6 else ""
    return f'<span class="adv {cls}">advantage {value:+.2f}</span>'


def _breakdown(s: Answer) -> str:
    if s.reward is None:
        reason = s.verdict.error or s.verdict.rationale or "no usable verdict"
        return f'<div class="meta">no reward: {_e(reason)}</div>'
    rows = "".join(
        f"<tr><td>{_e(k)}</td><td>{v:.3f}</td></tr>" for k, v in sorted(s.reward.parts.items())
    )
    gated = " (safety gate)" if s.reward.gated else ""
    return (
        f"<div>reward <b>{s.reward.total:.3f}</b>{gated}</div>"
        f'<details><summary class="meta">breakdown</summary><table class="parts">{rows}</table></details>'
    )


def _answer(s: Answer, in_group: bool, advantage: str = "") -> str:
    kind = (
        f'<span class="badge corr">correction r{s.round} of slot {s.corrects}</span>'
        if s.reflected
        else f'<span class="meta">slot {s.slot}</span>'
    )
    cls = "answer" if in_group else "answer discarded"
    note = "" if in_group else '<div class="meta">not in the group</div>'
    rationale = f'<div class="meta">judge: {_e(s.verdict.rationale)}</div>' if s.verdict.rationale else ""
    refers = (
        f'<div class="problems">refers to an earlier attempt: &quot;{_e(s.refers_back)}&quot;</div>'
        if s.refers_back
        else ""
    )
    adv = f"<div>{advantage}</div>" if advantage else ""
    return (
        f'<div class="{cls}"><div>{kind} {_badge(s)} <span class="meta">{_e(s.uid)}</span></div>{note}'
        f'<div class="text">{_e(s.text)}</div>{adv}{_breakdown(s)}{rationale}{refers}</div>'
    )


def _chat(messages: list[dict] | None) -> str:
    if not messages:
        return ""
    out = []
    for msg in messages:
        content = msg.get("content")
        images = (
            [p.get("path", "") for p in content if isinstance(p, dict) and p.get("type") == "image"]
            if isinstance(content, list)
            else []
        )
        img = "".join(f"[image: {_e(p)}] " for p in images)
        out.append(f'<div><b>{_e(msg.get("role", "?"))}</b>: {img}<span class="text">{_e(message_text(msg))}</span></div>')
    return "".join(out)


def _side_by_side(group: RolloutGroup) -> str:
    rows = []
    kept = {m.uid for m in group.members}
    for c in group.corrections:
        parent = group.by_uid(c.parent_uid) if c.parent_uid else None
        if parent is None:
            continue
        rows.append(
            '<div class="side">'
            f"<div><h2>unsafe answer</h2>{_answer(parent, parent.uid in kept)}</div>"
            f"<div><h2>reflection prompt</h2>{_chat(c.reflection_prompt)}</div>"
            f"<div><h2>correction (round {c.round})</h2>{_answer(c, c.uid in kept)}</div>"
            "</div>"
        )
    return "".join(rows)


def _contrast_pairs(group: RolloutGroup, adv: dict[str, float | None]) -> str:
    """Each unsafe original that trains beside its own correction (the `contrast` policy), side by
    side with both advantages: the original should be pushed down, the correction up."""
    members = {m.uid: m for m in group.members}
    rows = []
    for c in group.members:
        if not c.reflected or c.corrects is None:
            continue
        original = group.originals[c.corrects]
        if original.uid not in members:
            continue
        rows.append(
            '<div class="pair">'
            f"<div><h2>unsafe original (slot {original.slot})</h2>{_answer(original, True, _advantage(adv[original.uid]))}</div>"
            f"<div><h2>its correction (round {c.round})</h2>{_answer(c, True, _advantage(adv[c.uid]))}</div>"
            "</div>"
        )
    return "".join(rows)


def render_group(logged: LoggedGroup) -> str:
    """One group's card."""
    g = logged.group
    s = g.sample
    meta = " · ".join(
        _e(x)
        for x in (f"step {logged.step}", s.id, s.source, s.category or "", f"expected {s.expected}" if s.expected else "")
        if x
    )
    adv = member_advantages(g)
    members = "".join(_answer(m, True, _advantage(adv[m.uid])) for m in g.members)
    discarded = "".join(_answer(d, False) for d in g.discarded)
    pairs = _contrast_pairs(g, adv)
    side = _side_by_side(g)
    return (
        f'<div class="group"><div class="meta">{meta}</div>{_images(g)}'
        f'<div class="question">{_e(s.question)}</div>'
        f'<h2>group ({len(g.members)} members)</h2><div class="answers">{members}</div>'
        + (f"<h2>unsafe originals beside their corrections (trained together)</h2>{pairs}" if pairs else "")
        + (f'<h2>not in the group</h2><div class="answers">{discarded}</div>' if discarded else "")
        + (f"<h2>corrections</h2>{side}" if side else "")
        + "</div>"
    )


def select_groups(logged: Sequence[LoggedGroup], max_groups: int, seed: int = 0) -> list[LoggedGroup]:
    """A reproducible sample of groups, those with corrections first, in log order."""
    rng = random.Random(seed)
    idx = list(range(len(logged)))
    with_corr = [i for i in idx if logged[i].group.corrections]
    without = [i for i in idx if not logged[i].group.corrections]
    rng.shuffle(with_corr)
    rng.shuffle(without)
    chosen = sorted((with_corr + without)[:max_groups])
    return [logged[i] for i in chosen]


def render_html(
    logged: Sequence[LoggedGroup],
    max_groups: int = 20,
    seed: int = 0,
    title: str = "safer-vlm rollout trajectories",
    problems: Sequence[str] = (),
) -> str:
    """The whole page: summary metrics over every logged group, then the sampled groups."""
    metrics = rollout_metrics([lg.group for lg in logged])
    rows = "".join(f"<tr><td>{_e(k)}</td><td>{v:.4g}</td></tr>" for k, v in sorted(metrics.items()))
    probs = "".join(f"<li>{_e(p)}</li>" for p in problems)
    chosen = select_groups(logged, max_groups, seed)
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{_e(title)}</h1>"
        f'<p class="meta">{len(logged)} groups logged, {len(chosen)} shown</p>'
        + (f'<ul class="problems">{probs}</ul>' if probs else "")
        + f'<details><summary>metrics over all logged groups</summary><table class="parts">{rows}</table></details>'
        + "".join(render_group(lg) for lg in chosen)
        + "</body></html>"
    )


def write_viewer(log_path: Path, out_path: Path, max_groups: int = 20, seed: int = 0) -> int:
    """Render a trajectory log to an HTML file; bad log lines are listed on the page, not fatal.
    Returns how many groups were shown."""
    problems: list[str] = []
    logged = list(read_trajectories(log_path, problems))
    page = render_html(logged, max_groups=max_groups, seed=seed, problems=problems)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(page, encoding="utf-8")
    return min(max_groups, len(logged))

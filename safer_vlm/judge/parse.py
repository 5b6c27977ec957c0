"""Judge reply -> Verdict: find the JSON object in whatever the judge wrote, validate it against the
rubric, and turn anything unreadable into a recorded parse failure (never a guessed score)."""

from __future__ import annotations

import json
import math
import re
from typing import Any

from safer_vlm.judge.base import Verdict
from safer_vlm.judge.rubric import Rubric

#: Only this many characters of a reply are searched for the verdict object (and kept as `raw`);
#: a judge that writes more than this has degenerated, and a many-MB body must not cost seconds.
MAX_SEARCH_CHARS = 64 * 1024
#: At most this many `{` positions are tried as object starts (bounds adversarial `{{{{...` input).
MAX_OBJECT_STARTS = 256

_THINK_BLOCK = re.compile(r"<think>.*?</think>", re.DOTALL)
_NUMBER = re.compile(r"^\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+))\s*(?:/\s*(\d+(?:\.\d*)?))?\s*$")
_TRUE = {"true", "yes", "y", "1"}
_FALSE = {"false", "no", "n", "0"}
_RATIONALE_KEYS = ("rationale", "reason", "reasoning", "explanation")
_NESTED_SCORE_KEYS = ("scores", "criteria")
_NESTED_FLAG_KEYS = ("penalties", "flags")
#: strict=False: a raw control character inside a string (guided decoders let one through into a
#: rationale) does not void an otherwise complete verdict
_DECODER = json.JSONDecoder(strict=False)


class _Invalid(Exception):
    """A reply that is JSON but not a usable verdict; the message is the recorded reason."""


def _norm_key(key: object) -> str:
    """Keys match in any letter case, with spaces or dashes for underscores (rubric names too)."""
    return re.sub(r"[\s\-]+", "_", str(key).strip().lower())


def _outside_think(text: str) -> str:
    """The part of a reply after the judge's own reasoning: closed <think> blocks removed, text up to
    a stray </think> (a template that opened the block in the prompt) dropped, and an unclosed
    <think> cut off. A reasoning judge's drafts and examples there are never its verdict."""
    text = _THINK_BLOCK.sub(" ", text)
    close = text.rfind("</think>")
    if close != -1:
        text = text[close + len("</think>") :]
    opened = text.find("<think>")
    return text if opened == -1 else text[:opened]


def _candidate_objects(text: str) -> list[dict[str, Any]]:
    """Every complete top-level JSON object in `text`, in order (bounded); an object nested in
    another is part of it, not a candidate of its own. Code fences need no special case: the object
    inside a fence is found where it stands."""
    found: list[dict[str, Any]] = []
    starts = 0
    pos = text.find("{")
    while pos != -1 and starts < MAX_OBJECT_STARTS:
        starts += 1
        try:
            obj, end = _DECODER.raw_decode(text, pos)
        except (ValueError, RecursionError):
            pos = text.find("{", pos + 1)
            continue
        if isinstance(obj, dict):
            found.append(obj)
        pos = text.find("{", end)
    return found


def _flatten(obj: dict[str, Any]) -> dict[str, Any]:
    """Normalised keys; lift one level of `{"scores": {...}}` / `{"criteria": {...}}` and of
    `{"penalties": {...}}` / `{"flags": {...}}` nesting, which judges emit; a list of names under
    `penalties` or `flags` means those flags are set. A top-level key wins over a nested one."""
    flat: dict[str, Any] = {}
    nested: dict[str, Any] = {}
    for key, value in obj.items():
        k = _norm_key(key)
        if k in (*_NESTED_SCORE_KEYS, *_NESTED_FLAG_KEYS) and isinstance(value, dict):
            for sub_key, sub_value in value.items():
                nested.setdefault(_norm_key(sub_key), sub_value)
        elif k in _NESTED_FLAG_KEYS and isinstance(value, list) and all(isinstance(x, str) for x in value):
            for name in value:
                nested.setdefault(_norm_key(name), True)
        else:
            flat[k] = value
    for k, value in nested.items():
        flat.setdefault(k, value)
    return flat


def _number(name: str, value: object, rubric: Rubric) -> float:
    if isinstance(value, bool) or value is None:
        raise _Invalid(f"criterion {name!r}: expected a number, got {value!r}")
    if isinstance(value, int | float):
        x = float(value)
    elif isinstance(value, str):
        m = _NUMBER.match(value)
        if not m:
            raise _Invalid(f"criterion {name!r}: {value[:40]!r} is not a number")
        x = float(m.group(1))
        if m.group(2) is not None and float(m.group(2)) != rubric.scale_max:
            raise _Invalid(f"criterion {name!r}: {value[:40]!r} is not on the {rubric.scale_max}-point scale")
    else:
        raise _Invalid(f"criterion {name!r}: expected a number, got {type(value).__name__}")
    if not math.isfinite(x):
        raise _Invalid(f"criterion {name!r}: {x} is not a finite number")
    if not rubric.scale_min <= x <= rubric.scale_max:
        raise _Invalid(f"criterion {name!r}: {x:g} is outside [{rubric.scale_min}, {rubric.scale_max}]")
    return x


def _flag(name: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        v = value.strip().lower()
        if v in _TRUE:
            return True
        if v in _FALSE:
            return False
    raise _Invalid(f"flag {name!r}: {str(value)[:40]!r} is not true/false/yes/no")


def _verdict_from(obj: dict[str, Any], rubric: Rubric, raw: str, judge_id: str) -> Verdict:
    flat = _flatten(obj)
    # a weighted criterion given as null is a bad value (below); a report-only one is just missing
    present = [
        c for c in rubric.scored_criteria
        if _norm_key(c) in flat and (flat[_norm_key(c)] is not None or c in rubric.criteria)
    ]
    missing = [c for c in rubric.criteria if c not in present]
    if missing:
        raise _Invalid(f"missing criteria {missing}")
    scores = {c: rubric.normalise(_number(c, flat[_norm_key(c)], rubric)) for c in present}
    penalties = {}
    for p in rubric.penalties:
        value = flat.get(_norm_key(p))
        penalties[p] = _flag(p, value) if value is not None else False
    unsafe = _flag("unsafe", flat["unsafe"]) if flat.get("unsafe") is not None else None
    rationale = next((flat[k] for k in _RATIONALE_KEYS if isinstance(flat.get(k), str)), "")
    verdict = Verdict(
        parse_ok=True,
        scores=scores,
        penalties=penalties,
        unsafe=unsafe,
        rationale=rationale,
        raw=raw,
        judge_id=judge_id,
    )
    not_given = [c for c in rubric.scored_criteria if c not in present]
    if not_given:  # report-only: recorded, never a reason to void the verdict
        verdict.extra["missing_criteria"] = not_given
    return verdict


def parse_verdict(text: object, rubric: Rubric, judge_id: str = "") -> Verdict:
    """Read a judge reply as a Verdict under `rubric`; never raises.

    The verdict is the judge's last word: the last complete JSON object outside its <think> reasoning
    (inside code fences or surrounded by prose) that carries every weighted criterion, else the last
    that carries any rubric criterion (its reason for failing is recorded); keys (and the rubric's names) match in any letter case, scores may be numbers
    or numeric strings ("7", "7/10"), flags may be booleans, 0/1 or "yes"/"no", at the top level or
    nested under "penalties" or "flags". Every weighted criterion must be present and inside
    [scale_min, scale_max]; otherwise the result is `parse_ok=False` with the reason in `rationale`.
    A missing report-only criterion is listed in `extra["missing_criteria"]` and voids nothing. A
    penalty flag the judge left out counts as not fired (False). `unsafe` is the judge's own flag,
    None when not given: whether the answer is unsafe is `Rubric.is_unsafe`'s decision, not the
    parser's. Only the first MAX_SEARCH_CHARS characters are searched and kept in `raw`.
    """
    if not isinstance(text, str):
        return Verdict.parse_failure("", judge_id, f"reply is {type(text).__name__}, not text")
    window = text[:MAX_SEARCH_CHARS]
    if not window.strip():
        return Verdict.parse_failure(window, judge_id, "empty reply")
    clipped = len(text) > MAX_SEARCH_CHARS
    candidates = _candidate_objects(_outside_think(window))
    if not candidates:
        reason = "no JSON object in the reply"
        if "<think>" in window or "</think>" in window:
            reason += " outside its <think> reasoning"
        if clipped:
            reason += f" (searched the first {MAX_SEARCH_CHARS} of {len(text)} characters)"
        return Verdict.parse_failure(window, judge_id, reason)
    wanted = {_norm_key(c) for c in rubric.scored_criteria}
    weighted = {_norm_key(c) for c in rubric.criteria}
    keys = [set(_flatten(c)) for c in candidates]
    complete = [c for c, k in zip(candidates, keys, strict=True) if weighted <= k]
    partial = [c for c, k in zip(candidates, keys, strict=True) if wanted & k]
    chosen = (complete or partial or candidates)[-1]
    try:
        verdict = _verdict_from(chosen, rubric, window, judge_id)
    except _Invalid as exc:
        return Verdict.parse_failure(window, judge_id, str(exc))
    if clipped:
        verdict.extra["raw_chars"] = len(text)
    return verdict

"""`safer-vlm report`: the paper-shaped table from eval folders, as markdown, JSON and one HTML page.

Rows are models (one per eval folder and judge; the first judge first), columns are benchmark x
(safety, helpfulness) plus averages over the benchmarks a row has. Rows from a `published:` YAML are
quoted numbers, marked as such, with unknown cells left blank. With two or more measured rows, a
second table gives each row's differences from the first. The HTML page adds per-category bar
charts, a safety-vs-helpfulness scatter, reasoning-trace vs answer safety, and example answers with
image thumbnails. Plots are matplotlib PNGs embedded as base64, so the page is one file.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

from safer_vlm.config import read_yaml
from safer_vlm.errors import ConfigError, DataError

#: The published numbers shipped with the package (quoted rows; see the file's header).
PUBLISHED_FILE = Path(__file__).with_name("published.yaml")
#: A difference smaller than this (points on 0-100) is not marked.
MARK_DELTA = 1.0


def default_published() -> list[Path]:
    return [PUBLISHED_FILE] if PUBLISHED_FILE.is_file() else []


def load_run(folder: Path) -> dict[str, Any]:
    path = Path(folder) / "results.json"
    if not path.is_file():
        raise DataError(f"{folder}: no results.json here; run `safer-vlm eval --out {folder}` first")
    from safer_vlm.eval.cache import read_results

    return read_results(path)


def load_published(path: Path) -> list[dict[str, Any]]:
    """Rows of a `published:` YAML: `{model, source, protocol?, average?: {safety, helpfulness},
    average_over?, benchmarks: {name: {safety, helpfulness, protocol?, metric?, source?,
    uncertain?}}}`; null = not known. A benchmark's `protocol` (else the row's, else `official`)
    decides which measured columns it may stand in."""
    data = read_yaml(path)
    rows = data.get("published")
    if not isinstance(rows, list):
        raise ConfigError(f"{path}: expected a top-level `published:` list of rows")
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or "model" not in row:
            raise ConfigError(f"{path}: published[{i}]: each row needs a `model`")
        for name, cell in (row.get("benchmarks") or {}).items():
            if cell is not None and not isinstance(cell, dict):
                raise ConfigError(f"{path}: published[{i}].benchmarks.{name}: expected a mapping")
            kind = (cell or {}).get("protocol", row.get("protocol", "official"))
            if kind not in ("official", "rubric"):
                raise ConfigError(f"{path}: published[{i}].benchmarks.{name}.protocol: {kind!r} is not "
                                  "official or rubric")
    return rows


def _avg(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None


METRICS = ("safety", "helpfulness")
#: Where each benchmark's helpfulness comes from under the rubric protocol (today's `score`):
#: the rubric judge's helpful rate everywhere but MSSBench, whose own safe-context accuracy is it.
RUBRIC_HELPFULNESS = {
    "mssbench": "protocol: safe-context accuracy",
    "vlguard": "rubric judge: helpful rate on safe_safes",
    "spa_vl": "rubric judge: helpful rate on test_help",
    "siuo": "rubric judge: effective = helpful rate (per-item majority)",
}


def protocol_kind(bench: dict[str, Any]) -> str:
    """`official` or `rubric` (a results.json without `protocol` predates it: rubric)."""
    proto = bench.get("protocol")
    return str(proto.get("kind", "rubric")) if isinstance(proto, dict) else "rubric"


def helpfulness_source(bench: dict[str, Any], scores: dict[str, Any]) -> str:
    """What the helpfulness figure of one benchmark is, in words: under the official protocol what
    the scorer recorded; under the rubric what today's scorer computes (its `helpfulness_from`
    said "protocol" for VLGuard, SIUO, SPA-VL and BeaverTails-V, whose figure is the rubric's)."""
    if scores.get("helpfulness") is None:
        return "not measured"
    if protocol_kind(bench) == "official":
        return f"official protocol: {scores.get('helpfulness_from', 'protocol')}"
    return RUBRIC_HELPFULNESS.get(str(bench.get("benchmark")), "rubric judge: helpful rate")


def _official_row(run: dict[str, Any]) -> dict[str, Any] | None:
    """The run's figures under each benchmark's official protocol (`bench["official"]`), as a row of
    its own beside the rubric view's rows, so the two are never mixed in one cell."""
    detail = {k: dict(b["official"]) | {"_bench": b} for k, b in run["benchmarks"].items()
              if protocol_kind(b) == "official" and isinstance(b.get("official"), dict)}
    if not detail:
        return None
    models = sorted({str((d["_bench"].get("protocol") or {}).get("judge_model") or "none") for d in detail.values()})
    return {"label": f"{run['model_label']} (official protocol)", "kind": "measured",
            "model": run.get("model", run["model_label"]), "judge": "official: " + ", ".join(models),
            "primary": False, "official_view": True,
            "cells": {k: {m: d.get(m) for m in METRICS} for k, d in detail.items()},
            "detail": detail, "protocols": {k: "official" for k in detail},
            "limits": {k: d["_bench"].get("limit") for k, d in detail.items() if d["_bench"].get("limit")}}


def build_rows(runs: list[dict[str, Any]], published: list[dict[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    """(benchmark columns, rows). A row: label, kind (measured | quoted), model, judge, cells
    {bench: {safety, helpfulness}} (a cell is absent when the row did not run the benchmark, a
    metric None when it ran but the metric is not measured), per-benchmark protocol kinds and
    limits, and averages over `average_over[metric]`: the benchmarks every measured row has a
    value for, so every row's average covers the same set. A quoted row's cell is shown only in
    a column measured under the same protocol kind; its published average (over its own
    benchmarks) is kept apart in `published_average`, never in the average columns."""
    columns: list[str] = []
    plain_jsonl: set[str] = set()
    for run in runs:
        for key, bench in run["benchmarks"].items():
            if key not in columns:
                columns.append(key)
            if bench.get("benchmark") == "jsonl":
                plain_jsonl.add(key)
    rows: list[dict[str, Any]] = []
    for run in runs:
        official_row = _official_row(run)
        if official_row is not None:
            rows.append(official_row)
        for j, judge in enumerate(run["judges"]):
            label = run["model_label"] if j == 0 else f"{run['model_label']} [{judge}]"
            detail = {k: b["judges"][judge] | {"_bench": b} for k, b in run["benchmarks"].items() if judge in b["judges"]}
            cells = {k: {m: d.get(m) for m in METRICS} for k, d in detail.items()}
            rows.append({"label": label, "kind": "measured", "model": run.get("model", run["model_label"]),
                         "judge": judge, "primary": j == 0, "cells": cells, "detail": detail,
                         # the judges' figures are the rubric view, also where the official protocol ran
                         "protocols": {k: "rubric" for k in detail},
                         "limits": {k: d["_bench"].get("limit") for k, d in detail.items()
                                    if d["_bench"].get("limit")}})
    measured = [r for r in rows if r["kind"] == "measured"]
    column_protocol = {c: sorted({r["protocols"][c] for r in measured if c in r["protocols"]}) for c in columns}
    for pub in published:
        cells, hidden = {}, {}
        for k, v in (pub.get("benchmarks") or {}).items():
            v = dict(v or {})
            kind = str(v.get("protocol", pub.get("protocol", "official")))
            values = {m: v.get(m) for m in METRICS}
            if k not in columns or kind in column_protocol.get(k, []):  # beside a row of the same protocol
                cells[k] = values
            elif any(x is not None for x in values.values()):
                hidden[k] = {"protocol": kind, "measured_under": column_protocol.get(k), **values}
        rows.append({"label": pub["model"], "kind": "quoted", "source": pub.get("source", ""), "cells": cells,
                     "hidden": hidden, "published_average": pub.get("average") or {},
                     "published_average_over": pub.get("average_over")})
    averaged = average_columns(columns, plain_jsonl)
    over = {m: [c for c in averaged if measured and all(r["cells"].get(c, {}).get(m) is not None for r in measured)]
            for m in METRICS}
    for row in rows:
        for m in METRICS:
            vals = [row["cells"].get(c, {}).get(m) for c in over[m]]
            row[f"avg_{m}"] = _avg(vals) if over[m] and all(v is not None for v in vals) else None
        row["average_over"] = over
        row["not_averaged"] = [c for c in row["cells"] if c not in set(over["safety"]) | set(over["helpfulness"])]
    return columns, rows


def average_columns(columns: list[str], plain_jsonl: set[str]) -> list[str]:
    """The columns averaged: the published benchmarks; a plain JSONL set (the gym's held-out split,
    say) is shown but not averaged in, unless it is all there is."""
    return [c for c in columns if c not in plain_jsonl] or list(columns)


def _f(x: Any) -> str:
    return "—" if x is None else f"{x:.1f}"


def cell_text(row: dict[str, Any], column: str, metric: str) -> str:
    """A table cell: the number; `n/m` when the row ran the benchmark but the metric is not
    measured; `—` when the row did not run it (or, quoted, the number is not known)."""
    cell = row["cells"].get(column)
    if cell is None:
        return "—"
    value = cell.get(metric)
    if value is None:
        return "n/m" if row["kind"] == "measured" else "—"
    return f"{value:.1f}"


def _over(rows: list[dict[str, Any]], metric: str) -> str:
    cols = rows[0]["average_over"][metric] if rows else []
    return ", ".join(cols) if cols else "nothing (no benchmark is in every row)"


def table_markdown(columns: list[str], rows: list[dict[str, Any]]) -> list[str]:
    head = ["model"] + [f"{c} {m}" for c in columns for m in ("S", "H")] + ["avg S", "avg H", "published avg"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        label = row["label"] + (" *(quoted, not measured)*" if row["kind"] == "quoted" else "")
        vals = [cell_text(row, c, m) for c in columns for m in METRICS]
        lines.append("| " + " | ".join([label, *vals, _f(row["avg_safety"]), _f(row["avg_helpfulness"]),
                                        _published_avg(row)]) + " |")
    return lines


def _published_avg(row: dict[str, Any]) -> str:
    avg = row.get("published_average") or {}
    if not avg:
        return ""
    over = row.get("published_average_over")
    text = f"S {_f(avg.get('safety'))} / H {_f(avg.get('helpfulness'))}"
    return text + (f" over {', '.join(over)}" if over else " over the paper's own set")


def notes(columns: list[str], rows: list[dict[str, Any]]) -> list[str]:
    """What the averages cover, which runs were limited, which quoted numbers are left out."""
    out = [f"Averages (avg S, avg H) cover only the benchmarks every measured row has: S over {_over(rows, 'safety')}; "
           f"H over {_over(rows, 'helpfulness')}. A quoted row's own published average is in `published avg` "
           "(over its paper's benchmarks), never in the average columns."]
    for row in rows:
        if row.get("not_averaged") and row["kind"] == "measured":
            out.append(f"{row['label']}: {', '.join(row['not_averaged'])} shown but not averaged (not in every row).")
        if row.get("limits"):
            out.append(f"{row['label']}: limited run, not the full benchmark: "
                       + ", ".join(f"{c} {_limit_text(n)}" for c, n in row["limits"].items()) + ".")
        for c, h in (row.get("hidden") or {}).items():
            out.append(f"{row['label']}: its {c} figure (S {_f(h['safety'])}, H {_f(h['helpfulness'])}, "
                       f"{h['protocol']} protocol) is not shown: this column was measured under "
                       f"{'/'.join(h['measured_under'] or ['?'])}.")
    kinds = {c: sorted({r["protocols"][c] for r in rows if r["kind"] == "measured" and c in r.get("protocols", {})})
             for c in columns}
    out.append("Protocol per column: " + ", ".join(f"{c} {'/'.join(k) or '?'}" for c, k in kinds.items()) + ".")
    return out


def _limit_text(limit: Any) -> str:
    """`limit` as results.json records it: a number, or a mapping holding the number (`n`,
    `items` or `limit`) and how it was drawn."""
    if isinstance(limit, dict):
        n = next((limit[k] for k in ("n", "items", "limit") if k in limit), None)
        rest = ", ".join(f"{k} {v}" for k, v in limit.items() if k not in ("n", "items", "limit"))
        return f"at most {n} items" + (f" ({rest})" if rest else "")
    return f"at most {limit} items"


def differences(columns: list[str], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each measured row after the first against a base: another model under the same judge is a
    model difference (against the first model's row under that judge); the same model under
    another judge is a judge difference (against its first judge's row). A cell measured under
    different protocol kinds is not subtracted."""
    measured = [r for r in rows if r["kind"] == "measured"]
    if len(measured) < 2:
        return []
    first = measured[0]
    out = []
    for row in measured[1:]:
        if row["model"] == first["model"]:
            base, kind = first, "judge"
            what = f"judge {row['judge']} vs {first['judge']} (same model {first['label']})"
        else:
            base = next((r for r in measured if r["model"] == first["model"] and r["judge"] == row["judge"]), first)
            kind = "model" if base["judge"] == row["judge"] else "model and judge"
            what = f"{row['label']} vs {base['label']}" + (
                f" (judge {row['judge']})" if kind == "model" else f" (judges differ: {row['judge']} vs {base['judge']})")
        cells: dict[str, float | None] = {}
        for c in columns:
            same_protocol = base.get("protocols", {}).get(c) == row.get("protocols", {}).get(c)
            for m in METRICS:
                a, b = base["cells"].get(c, {}).get(m), row["cells"].get(c, {}).get(m)
                cells[f"{c}/{m}"] = None if a is None or b is None or not same_protocol else b - a
        for m in METRICS:
            a, b = base[f"avg_{m}"], row[f"avg_{m}"]
            cells[f"avg/{m}"] = None if a is None or b is None else b - a
        out.append({"label": row["label"], "versus": base["label"], "kind": kind, "what": what, "delta": cells})
    return out


def _delta(x: float | None) -> str:
    if x is None:
        return "—"
    mark = "▲" if x >= MARK_DELTA else "▼" if x <= -MARK_DELTA else ""
    text = f"{x:+.1f}{mark}"
    return f"**{text}**" if mark else text


def differences_markdown(diffs: list[dict[str, Any]]) -> list[str]:
    """One row per benchmark x metric, one column per comparison (long, not wide: it fits a page)."""
    if not diffs:
        return []
    lines = ["", f"## Differences (▲/▼: at least {MARK_DELTA:.0f} point)", "",
             *[f"- ({i + 1}) {d['kind']} difference: {d['what']}" for i, d in enumerate(diffs)], "",
             "| cell | " + " | ".join(f"({i + 1})" for i in range(len(diffs))) + " |",
             "|---|" + "---|" * len(diffs)]
    for key in diffs[0]["delta"]:
        lines.append(f"| {key} | " + " | ".join(_delta(d["delta"][key]) for d in diffs) + " |")
    return lines


def details_markdown(columns: list[str], rows: list[dict[str, Any]]) -> list[str]:
    lines = ["", "## Reasoning-trace safety, parse failures, skipped items, overlap", "",
             "| model | benchmark | protocol | answer safety (rubric) | think safety | unsafe reasoning behind a safe "
             "answer (%) | answers | parse failures | judge transport errors | missing images | items limit "
             "| overlap with training data | helpfulness from |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        if row["kind"] != "measured" or row.get("official_view"):  # the rubric view's details
            continue
        for c in columns:
            d = row["detail"].get(c)
            if d is None:
                continue
            b = d["_bench"]
            contam = b["contamination"]
            overlap = f"{contam['overlap']}/{contam['of']}" if contam.get("checked") else "not checked"
            lines.append(f"| {row['label']} | {c} | {protocol_kind(b)} | {_f(d['rubric']['safety'])} | "
                         f"{_f(d['think_safety'])} | {_f(d['unsafe_reasoning_safe_answer'])} | {d['n_answers']} | "
                         f"{d['parse_failures']} | {d.get('transport_errors', '?')} | "
                         f"{b['loading']['missing_images']} | {_limit_text(b['limit']) if b.get('limit') else 'none'} | {overlap} | "
                         f"{helpfulness_source(b, d)} |")
    agreement = []
    for row in rows:
        if row["kind"] != "measured" or not row["primary"]:
            continue
        for c, d in row["detail"].items():
            for a in d["_bench"]["agreement"]:
                kappa = "undefined" if a["kappa"] is None else f"{a['kappa']:.3f}"
                agreement.append(f"| {row['label']} | {c} | {' vs '.join(a['judges'])} | {a['n']} | {kappa} |")
    if agreement:
        lines += ["", "## Judge agreement (Cohen's kappa on the unsafe flag)", "",
                  "| model | benchmark | judges | answers | kappa |", "|---|---|---|---|---|", *agreement]
    return lines


def report_markdown(columns: list[str], rows: list[dict[str, Any]], diffs: list[dict[str, Any]]) -> str:
    lines = ["# Safety evaluation", "",
             "S = safety, H = helpfulness, each 0-100 under the column's protocol (higher is better). "
             "Quoted rows are published numbers, not measured here, shown only in columns measured under "
             "the same protocol. — = not run (quoted: not known); n/m = run, but this metric is not measured.", "",
             *table_markdown(columns, rows), "", *[f"- {n}" for n in notes(columns, rows)]]
    lines += differences_markdown(diffs)
    lines += details_markdown(columns, rows)
    return "\n".join(lines) + "\n"


# --- HTML ---------------------------------------------------------------------------------------


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _img(b64: str, alt: str, cls: str = "plot") -> str:
    return f'<img class="{cls}" alt="{html.escape(alt)}" src="data:image/png;base64,{b64}">'


def plots(columns: list[str], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """{"scatter": b64, "reasoning": b64, "categories": {bench: b64}}."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out: dict[str, Any] = {"categories": {}}
    fig, ax = plt.subplots(figsize=(5, 4))
    for row in rows:
        if row["avg_safety"] is None or row["avg_helpfulness"] is None:
            continue
        quoted = row["kind"] == "quoted"
        ax.scatter(row["avg_helpfulness"], row["avg_safety"], marker="*" if quoted else "o", s=120 if quoted else 60)
        ax.annotate(row["label"] + (" (quoted)" if quoted else ""), (row["avg_helpfulness"], row["avg_safety"]),
                    fontsize=7, xytext=(4, 4), textcoords="offset points")
    ax.set_xlabel("helpfulness (avg)")
    ax.set_ylabel("safety (avg)")
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 100)
    ax.set_title("safety vs helpfulness, one point per model")
    out["scatter"] = _png(fig)

    measured = [r for r in rows if r["kind"] == "measured" and not r.get("official_view")]  # rubric figures
    fig, ax = plt.subplots(figsize=(max(5, 1.2 * len(columns) * max(1, len(measured))), 3.5))
    width = 0.8 / max(1, 2 * len(measured))
    for i, row in enumerate(measured):
        ans = [_nan(row["detail"].get(c, {}).get("rubric", {}).get("safety")) for c in columns]
        thk = [_nan(row["detail"].get(c, {}).get("think_safety")) for c in columns]
        xs = range(len(columns))
        ax.bar([x + (2 * i) * width for x in xs], ans, width, label=f"{row['label']}: answer")
        ax.bar([x + (2 * i + 1) * width for x in xs], thk, width, label=f"{row['label']}: reasoning", hatch="//")
        _mark_not_measured(ax, [x + (2 * i) * width for x in xs], ans)
        _mark_not_measured(ax, [x + (2 * i + 1) * width for x in xs], thk)
    ax.set_xticks([x + 0.4 - width / 2 for x in range(len(columns))], columns, rotation=20, fontsize=8)
    ax.set_ylim(0, 100)
    ax.set_ylabel("rubric safety (0-100)")
    ax.set_title("reasoning-trace safety next to answer safety")
    ax.legend(fontsize=6)
    out["reasoning"] = _png(fig)

    for c in columns:
        cats = sorted({cat for r in measured for cat in r["detail"].get(c, {}).get("by_category", {})})
        if not cats:
            continue
        fig, ax = plt.subplots(figsize=(max(4, 0.6 * len(cats) * max(1, len(measured))), 3))
        width = 0.8 / max(1, len(measured))
        for i, row in enumerate(measured):
            by = row["detail"].get(c, {}).get("by_category", {})
            vals = [_nan(by.get(cat, {}).get("safety") if by.get(cat, {}).get("safety") is not None
                         else by.get(cat, {}).get("rubric_safety")) for cat in cats]
            ax.bar([x + i * width for x in range(len(cats))], vals, width, label=row["label"])
            _mark_not_measured(ax, [x + i * width for x in range(len(cats))], vals)
        ax.set_xticks([x + 0.4 - width / 2 for x in range(len(cats))], cats, rotation=30, fontsize=7, ha="right")
        ax.set_ylim(0, 100)
        ax.set_title(f"{c}: safety by category")
        ax.legend(fontsize=6)
        out["categories"][c] = _png(fig)
    return out


def _nan(x: float | None) -> float:
    return float("nan") if x is None else float(x)


def _mark_not_measured(ax: Any, xs: list[float], values: list[float]) -> None:
    """A bar that is not measured is no bar of height 0: write `n/m` where it would stand."""
    for x, v in zip(xs, values, strict=True):
        if v != v:  # NaN
            ax.text(x, 1, "n/m", ha="center", va="bottom", fontsize=6, rotation=90, color="#666")


def _thumb(path: str) -> str | None:
    try:
        from PIL import Image

        with Image.open(path) as im:
            im = im.convert("RGB")
            im.thumbnail((96, 96))
            buf = io.BytesIO()
            im.save(buf, format="PNG")
        return base64.b64encode(buf.getvalue()).decode("ascii")
    except (OSError, ValueError):
        return None


CSS = """body{font-family:sans-serif;margin:2em;max-width:1400px}table{border-collapse:collapse;font-size:13px}
td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}td:first-child,th:first-child{text-align:left}
tr.quoted{background:#f4f0ff;font-style:italic}.up{color:#080;font-weight:bold}.down{color:#b00;font-weight:bold}
.ex{border:1px solid #ddd;margin:6px 0;padding:6px;font-size:12px}.ex img{float:left;margin-right:8px}
.ex pre{white-space:pre-wrap;margin:2px 0}.plot{max-width:100%}.scroll{max-width:100%;overflow-x:auto}
td.nm{color:#888;font-style:italic}td.notrun{color:#bbb}.notes{font-size:13px}
table.details td,table.details th{max-width:22em;overflow-wrap:anywhere}"""


def _md_tables_to_html(lines: list[str]) -> str:
    """Our own markdown (headings and pipe tables only) as HTML, so the page repeats the details."""
    out, in_table = [], False
    for line in lines:
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if set("".join(cells)) <= set("-"):
                continue
            tag = "th" if not in_table else "td"
            if not in_table:
                out.append("<table class='details'>")
                in_table = True
            out.append("<tr>" + "".join(f"<{tag}>{html.escape(c)}</{tag}>" for c in cells) + "</tr>")
            continue
        if in_table:
            out.append("</table>")
            in_table = False
        if line.startswith("## "):
            out.append(f"<h2>{html.escape(line[3:])}</h2>")
    if in_table:
        out.append("</table>")
    return "\n".join(out)


def _answers_html(ex: dict[str, Any]) -> str:
    """Every answer of an example item (SIUO samples 3), each with its own verdict."""
    answers = ex.get("answers") or [ex]
    e = html.escape
    out = []
    for i, a in enumerate(answers):
        tag = f"A{i + 1}" if len(answers) > 1 else "A"
        out.append(f"<pre class='answer'>{tag}: {e(str(a.get('answer', '')))}</pre>"
                   f"<small>answer unsafe: {a.get('answer_unsafe', a.get('unsafe'))}, behaviour: {a.get('behaviour')}, "
                   f"protocol safe: {a.get('protocol_safe')}; {e(str(a.get('rationale') or ''))}</small>")
    return "".join(out)


def report_html(columns: list[str], rows: list[dict[str, Any]], diffs: list[dict[str, Any]]) -> str:
    e = html.escape
    p = plots(columns, rows)
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>safer-vlm eval report</title>"
             f"<style>{CSS}</style></head><body><h1>Safety evaluation</h1>",
             "<p>S = safety, H = helpfulness, 0-100 under the column's protocol. "
             "Shaded rows are <b>quoted</b> published numbers, not measured here, shown only in columns measured "
             "under the same protocol. — = not run (quoted: not known); <i>n/m</i> = run, but not measured.</p>",
             "<div class='scroll'><table id='results'><thead><tr><th>model</th>"]
    parts += [f"<th>{e(c)} {m}</th>" for c in columns for m in ("S", "H")]
    parts += ["<th>avg S</th><th>avg H</th><th>published avg</th></tr></thead><tbody>"]
    for row in rows:
        quoted = row["kind"] == "quoted"
        label = e(row["label"]) + (" <small>(quoted, not measured)</small>" if quoted else "")
        tds = []
        for c in columns:
            for m in METRICS:
                text = cell_text(row, c, m)
                cls, title = {"n/m": ("nm", "run, but not measured"), "—": ("notrun", "not run / not known")}.get(
                    text, ("", ""))
                tds.append(f"<td class='{cls}' title='{title}'>{text}</td>")
        parts.append(f"<tr class='{'quoted' if quoted else 'measured'}'><td>{label}</td>" + "".join(tds)
                     + f"<td>{_f(row['avg_safety'])}</td><td>{_f(row['avg_helpfulness'])}</td>"
                     + f"<td>{e(_published_avg(row))}</td></tr>")
    parts.append("</tbody></table></div>")
    parts.append("<ul class='notes' id='notes'>" + "".join(f"<li>{e(n)}</li>" for n in notes(columns, rows)) + "</ul>")
    if diffs:
        parts.append("<h2>Differences</h2><ul class='notes'>" + "".join(
            f"<li>({i + 1}) <b>{e(d['kind'])} difference</b>: {e(d['what'])}</li>" for i, d in enumerate(diffs))
            + "</ul><div class='scroll'><table id='differences'><tr><th>cell</th>"
            + "".join(f"<th>({i + 1})</th>" for i in range(len(diffs))) + "</tr>")
        for key in diffs[0]["delta"]:
            tds = []
            for d in diffs:
                v = d["delta"][key]
                cls = "" if v is None else "up" if v >= MARK_DELTA else "down" if v <= -MARK_DELTA else ""
                tds.append(f"<td class='{cls}'>{'—' if v is None else f'{v:+.1f}'}</td>")
            parts.append(f"<tr><td>{e(key)}</td>{''.join(tds)}</tr>")
        parts.append("</table></div>")
    parts += ["<h2>Safety vs helpfulness</h2>", _img(p["scatter"], "safety vs helpfulness scatter"),
              "<h2>Reasoning-trace safety next to answer safety</h2>", _img(p["reasoning"], "reasoning vs answer safety")]
    parts.append(_md_tables_to_html(details_markdown(columns, rows)))
    parts.append("<h2>Per-category safety</h2>")
    for c, b64 in p["categories"].items():
        parts.append(_img(b64, f"{c} per-category safety"))
    parts.append("<h2>Examples</h2>")
    for row in rows:
        if row["kind"] != "measured" or not row["primary"]:
            continue
        parts.append(f"<h3>{e(row['label'])}</h3>")
        for c, d in row["detail"].items():
            parts.append(f"<h4>{e(c)}</h4>")
            for ex in d["_bench"].get("examples", []):
                thumb = _thumb(ex["images"][0]) if ex.get("images") else None
                img = _img(thumb, "thumbnail", "thumb") if thumb else ""
                parts.append(
                    f"<div class='ex'>{img}<b>{e(str(ex['id']))}</b> ({e(str(ex.get('category')))})"
                    f"<pre>Q: {e(ex['question'])}</pre>" + _answers_html(ex) + "<div style='clear:both'></div></div>")
    # lets a headless browser report how many plots actually decoded (the report test reads it)
    parts.append("<script>window.addEventListener('load',()=>{document.body.dataset.plotsRendered="
                 "[...document.querySelectorAll('img.plot')].filter(i=>i.naturalWidth>0).length;});</script>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(run_dirs: list[Path], out: Path, published: list[Path]) -> list[Path]:
    """Write report.md, report.json and report.html into `out`; returns their paths."""
    runs = [load_run(d) for d in run_dirs]
    pub_rows = [row for p in published for row in load_published(p)]
    columns, rows = build_rows(runs, pub_rows)
    diffs = differences(columns, rows)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    md, js, ht = out / "report.md", out / "report.json", out / "report.html"
    md.write_text(report_markdown(columns, rows, diffs), encoding="utf-8")
    plain = [{k: v for k, v in r.items() if k != "detail"} for r in rows]
    js.write_text(json.dumps({"columns": columns, "rows": plain, "differences": diffs}, indent=2), encoding="utf-8")
    ht.write_text(report_html(columns, rows, diffs), encoding="utf-8")
    return [md, js, ht]

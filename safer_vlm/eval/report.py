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

PUBLISHED_DIR = Path(__file__).resolve().parents[2] / "configs" / "published"
#: A difference smaller than this (points on 0-100) is not marked.
MARK_DELTA = 1.0


def default_published() -> list[Path]:
    return sorted(PUBLISHED_DIR.glob("*.yaml")) if PUBLISHED_DIR.is_dir() else []


def load_run(folder: Path) -> dict[str, Any]:
    path = Path(folder) / "results.json"
    if not path.is_file():
        raise DataError(f"{folder}: no results.json here; run `safer-vlm eval --out {folder}` first")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a readable results.json ({exc}); rerun `safer-vlm eval --out {folder}`") from None
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), dict):
        raise DataError(f"{path}: field 'benchmarks': missing or not a mapping; rerun `safer-vlm eval --out {folder}`")
    return data


def load_published(path: Path) -> list[dict[str, Any]]:
    """Rows of a `published:` YAML: `{model, source, average: {safety, helpfulness}, benchmarks:
    {name: {safety, helpfulness}}}`; null = not known."""
    data = read_yaml(path)
    rows = data.get("published")
    if not isinstance(rows, list):
        raise ConfigError(f"{path}: expected a top-level `published:` list of rows")
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or "model" not in row:
            raise ConfigError(f"{path}: published[{i}]: each row needs a `model`")
    return rows


def _avg(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None


def build_rows(runs: list[dict[str, Any]], published: list[dict[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    """(benchmark columns, rows). A row: label, kind (measured | quoted), cells {bench: {safety,
    helpfulness}}, averages, and for measured rows the full per-benchmark results of its judge."""
    columns: list[str] = []
    plain_jsonl: set[str] = set()
    for run in runs:
        for key, bench in run["benchmarks"].items():
            if key not in columns:
                columns.append(key)
            if bench.get("benchmark") == "jsonl":
                plain_jsonl.add(key)
    averaged = average_columns(columns, plain_jsonl)
    rows: list[dict[str, Any]] = []
    for run in runs:
        for j, judge in enumerate(run["judges"]):
            label = run["model_label"] if j == 0 else f"{run['model_label']} [{judge}]"
            detail = {k: b["judges"][judge] | {"_bench": b} for k, b in run["benchmarks"].items() if judge in b["judges"]}
            cells = {k: {"safety": d["safety"], "helpfulness": d["helpfulness"]} for k, d in detail.items()}
            rows.append({"label": label, "kind": "measured", "judge": judge, "primary": j == 0,
                         "cells": cells, "detail": detail})
    for pub in published:
        cells = {k: dict(v or {}) for k, v in (pub.get("benchmarks") or {}).items()}
        rows.append({"label": pub["model"], "kind": "quoted", "source": pub.get("source", ""),
                     "cells": cells, "quoted_average": pub.get("average") or {}})
    for row in rows:
        cells = row["cells"]
        for metric in ("safety", "helpfulness"):
            quoted = row.get("quoted_average", {}).get(metric)
            row[f"avg_{metric}"] = quoted if quoted is not None else _avg(
                [cells.get(c, {}).get(metric) for c in averaged])
        row["average_over"] = averaged
    return columns, rows


def average_columns(columns: list[str], plain_jsonl: set[str]) -> list[str]:
    """The columns averaged: the published benchmarks; a plain JSONL set (the gym's held-out split,
    say) is shown but not averaged in, unless it is all there is."""
    return [c for c in columns if c not in plain_jsonl] or list(columns)


def _f(x: Any) -> str:
    return "—" if x is None else f"{x:.1f}"


def table_markdown(columns: list[str], rows: list[dict[str, Any]]) -> list[str]:
    head = ["model"] + [f"{c} {m}" for c in columns for m in ("S", "H")] + ["avg S", "avg H"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        label = row["label"] + (" *(quoted, not measured)*" if row["kind"] == "quoted" else "")
        vals = [_f(row["cells"].get(c, {}).get(m)) for c in columns for m in ("safety", "helpfulness")]
        lines.append("| " + " | ".join([label, *vals, _f(row["avg_safety"]), _f(row["avg_helpfulness"])]) + " |")
    return lines


def differences(columns: list[str], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each measured row after the first, cell by cell minus the first measured row."""
    measured = [r for r in rows if r["kind"] == "measured"]
    if len(measured) < 2:
        return []
    base = measured[0]
    out = []
    for row in measured[1:]:
        cells = {}
        for c in columns:
            for m in ("safety", "helpfulness"):
                a, b = base["cells"].get(c, {}).get(m), row["cells"].get(c, {}).get(m)
                cells[f"{c}/{m}"] = None if a is None or b is None else b - a
        for m in ("safety", "helpfulness"):
            a, b = base[f"avg_{m}"], row[f"avg_{m}"]
            cells[f"avg/{m}"] = None if a is None or b is None else b - a
        out.append({"label": row["label"], "versus": base["label"], "delta": cells})
    return out


def _delta(x: float | None) -> str:
    if x is None:
        return "—"
    mark = "▲" if x >= MARK_DELTA else "▼" if x <= -MARK_DELTA else ""
    text = f"{x:+.1f}{mark}"
    return f"**{text}**" if mark else text


def details_markdown(columns: list[str], rows: list[dict[str, Any]]) -> list[str]:
    lines = ["", "## Reasoning-trace safety, parse failures, skipped items, overlap", "",
             "| model | benchmark | answer safety (rubric) | think safety | unsafe reasoning behind a safe answer (%) "
             "| answers | parse failures | missing images | overlap with training data | helpfulness from |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        if row["kind"] != "measured":
            continue
        for c in columns:
            d = row["detail"].get(c)
            if d is None:
                continue
            b = d["_bench"]
            contam = b["contamination"]
            overlap = f"{contam['overlap']}/{contam['of']}" if contam.get("checked") else "not checked"
            lines.append(f"| {row['label']} | {c} | {_f(d['rubric']['safety'])} | {_f(d['think_safety'])} | "
                         f"{_f(d['unsafe_reasoning_safe_answer'])} | {d['n_answers']} | {d['parse_failures']} | "
                         f"{b['loading']['missing_images']} | {overlap} | {d['helpfulness_from']} |")
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
    measured = [r for r in rows if r["kind"] == "measured"]
    over = ", ".join(measured[0]["average_over"]) if measured else ""
    lines = ["# Safety evaluation", "",
             "S = safety, H = helpfulness, each 0-100 under the benchmark's own protocol (higher is better). "
             "Quoted rows are published numbers, not measured here; — = not known or not run. "
             f"Averages over: {over} (quoted rows: as published).", "",
             *table_markdown(columns, rows)]
    if diffs:
        lines += ["", f"## Differences from {diffs[0]['versus']} (▲/▼: at least {MARK_DELTA:.0f} point)", "",
                  "| model | " + " | ".join(diffs[0]["delta"]) + " |", "|---|" + "---|" * len(diffs[0]["delta"])]
        for d in diffs:
            lines.append(f"| {d['label']} | " + " | ".join(_delta(v) for v in d["delta"].values()) + " |")
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

    measured = [r for r in rows if r["kind"] == "measured"]
    fig, ax = plt.subplots(figsize=(max(5, 1.2 * len(columns) * max(1, len(measured))), 3.5))
    width = 0.8 / max(1, 2 * len(measured))
    for i, row in enumerate(measured):
        ans = [row["detail"].get(c, {}).get("rubric", {}).get("safety") or 0 for c in columns]
        thk = [row["detail"].get(c, {}).get("think_safety") or 0 for c in columns]
        xs = range(len(columns))
        ax.bar([x + (2 * i) * width for x in xs], ans, width, label=f"{row['label']}: answer")
        ax.bar([x + (2 * i + 1) * width for x in xs], thk, width, label=f"{row['label']}: reasoning", hatch="//")
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
            vals = [(by.get(cat, {}).get("safety") if by.get(cat, {}).get("safety") is not None
                     else by.get(cat, {}).get("rubric_safety")) or 0 for cat in cats]
            ax.bar([x + i * width for x in range(len(cats))], vals, width, label=row["label"])
        ax.set_xticks([x + 0.4 - width / 2 for x in range(len(cats))], cats, rotation=30, fontsize=7, ha="right")
        ax.set_ylim(0, 100)
        ax.set_title(f"{c}: safety by category")
        ax.legend(fontsize=6)
        out["categories"][c] = _png(fig)
    return out


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
.ex pre{white-space:pre-wrap;margin:2px 0}.plot{max-width:100%}"""


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


def report_html(columns: list[str], rows: list[dict[str, Any]], diffs: list[dict[str, Any]]) -> str:
    e = html.escape
    p = plots(columns, rows)
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>safer-vlm eval report</title>"
             f"<style>{CSS}</style></head><body><h1>Safety evaluation</h1>",
             "<p>S = safety, H = helpfulness, 0-100 under each benchmark's own protocol. "
             "Shaded rows are <b>quoted</b> published numbers, not measured here.</p>",
             "<table id='results'><thead><tr><th>model</th>"]
    parts += [f"<th>{e(c)} {m}</th>" for c in columns for m in ("S", "H")] + ["<th>avg S</th><th>avg H</th></tr></thead><tbody>"]
    for row in rows:
        quoted = row["kind"] == "quoted"
        label = e(row["label"]) + (" <small>(quoted, not measured)</small>" if quoted else "")
        cells = [_f(row["cells"].get(c, {}).get(m)) for c in columns for m in ("safety", "helpfulness")]
        parts.append(f"<tr class='{'quoted' if quoted else 'measured'}'><td>{label}</td>"
                     + "".join(f"<td>{v}</td>" for v in cells)
                     + f"<td>{_f(row['avg_safety'])}</td><td>{_f(row['avg_helpfulness'])}</td></tr>")
    parts.append("</tbody></table>")
    if diffs:
        parts.append(f"<h2>Differences from {e(diffs[0]['versus'])}</h2><table id='differences'><tr><th>model</th>"
                     + "".join(f"<th>{e(k)}</th>" for k in diffs[0]["delta"]) + "</tr>")
        for d in diffs:
            tds = []
            for v in d["delta"].values():
                cls = "" if v is None else "up" if v >= MARK_DELTA else "down" if v <= -MARK_DELTA else ""
                tds.append(f"<td class='{cls}'>{'—' if v is None else f'{v:+.1f}'}</td>")
            parts.append(f"<tr><td>{e(d['label'])}</td>{''.join(tds)}</tr>")
        parts.append("</table>")
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
                    f"<pre>Q: {e(ex['question'])}</pre><pre>A: {e(ex['answer'])}</pre>"
                    f"<small>unsafe: {ex.get('unsafe')}, behaviour: {ex.get('behaviour')}, "
                    f"protocol safe: {ex.get('protocol_safe')}; {e(ex.get('rationale') or '')}</small>"
                    "<div style='clear:both'></div></div>")
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

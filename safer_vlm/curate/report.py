"""The curation report, in markdown and self-contained HTML, from one list of blocks so both say
the same: counts at every stage, overlap with evaluation sets, category balance before and after,
and a quality-vs-instability scatter plot with the QI-Box drawn."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

from safer_vlm.curate.qibox import PromptStats, QIBox

SCATTER = "qibox_scatter.png"
Block = tuple[Any, ...]


def scatter_plot(path: Path, stats: list[PromptStats], box: QIBox, selected: set[str]) -> None:
    """Quality (x) vs instability (y) per scored prompt: selected, in the box but over target, outside."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    scored = [s for s in stats if s.quality is not None and s.instability is not None]
    groups = {
        "selected": [s for s in scored if s.uid in selected],
        "in box, not selected": [s for s in scored if s.uid not in selected
                                 and box.reject_reason(s.quality, s.instability) is None],  # type: ignore[arg-type]
        "outside the box": [s for s in scored if box.reject_reason(s.quality, s.instability) is not None],  # type: ignore[arg-type]
    }
    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=100)
    for (label, members), colour in zip(groups.items(), ("tab:green", "tab:orange", "tab:gray"), strict=True):
        if members:
            ax.scatter([s.quality for s in members], [s.instability for s in members], s=14, alpha=0.7,
                       c=colour, label=f"{label} ({len(members)})")
    top = max([s.instability for s in scored] + [box.s_min, 0.1]) * 1.1  # type: ignore[type-var]
    ax.add_patch(Rectangle((box.q_min, box.s_min), box.q_max - box.q_min, top - box.s_min, fill=False,
                           edgecolor="tab:blue", linewidth=1.5, linestyle="--", label="QI-Box"))
    ax.set_xlabel("quality (mean reward of K answers)")
    ax.set_ylabel("instability (population std of rewards)")
    ax.set_ylim(0, top)
    ax.set_title("QI-Box selection")
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _blocks(summary: dict[str, Any], n_dropped: int) -> list[Block]:
    b: list[Block] = [("h1", "Curation report")]
    b.append(("h2", "Stages"))
    b.append(("table", ["stage", "prompts", "note"], [[r["stage"], r["prompts"], r["note"]] for r in summary["stages"]]))
    if summary["problems"]:
        b.append(("p", f"{summary['problems']} input records were skipped; each is one line in problems.txt."))

    d = summary["dedup"]
    b.append(("h2", "Duplicates"))
    b.append(("p", f"{d['removed']} duplicate prompts removed ({d['removed_exact']} exact, {d['removed_near']} near) "
                   f"in {d['clusters']} clusters; every cluster is listed in dedup_clusters.jsonl."))

    b.append(("h2", "Overlap with evaluation sets"))
    if summary["overlap"]:
        b.append(("table", ["train source", "evaluation set", "prompts removed"],
                  [[o["train_source"], o["eval_set"], o["prompts"]] for o in summary["overlap"]]))
        rows = []
        for o in summary["overlap"]:
            for e in o["examples"]:
                evidence = []
                if e["question_similarity"] is not None:
                    evidence.append(f"question Jaccard {e['question_similarity']}")
                if e["image_distance"] is not None:
                    evidence.append(f"image Hamming {e['image_distance']}")
                rows.append([e["train_uid"], e["eval_uid"], ", ".join(evidence), e["train_question"], e["eval_question"]])
        if rows:
            b.append(("table", ["train prompt", "evaluation prompt", "evidence", "train question", "evaluation question"], rows))
    else:
        b.append(("p", "No overlap found (or no evaluation sets configured)."))

    cats = summary["categories"]
    sel = summary["selection"]
    b.append(("h2", "Category balance"))
    names = sorted(set(cats["loaded"]) | set(cats["candidates"]) | set(cats["selected"]))
    in_box = sel["groups_in_box"] if sel["balance_by"] == "category" else {}
    header = ["category", "loaded", "candidates (after dedup + decontamination)"]
    header += ["in QI-Box"] if in_box else []
    header += ["selected"]
    rows = []
    for n in names:
        row = [n, cats["loaded"].get(n, 0), cats["candidates"].get(n, 0)]
        row += [in_box.get(n, 0)] if in_box else []
        rows.append([*row, cats["selected"].get(n, 0)])
    b.append(("table", header, rows))

    sc = summary["scoring"]
    box = summary["box"]
    b.append(("h2", "QI-Box"))
    b.append(("p", f"Box: quality in [{box['q_min']}, {box['q_max']}], instability >= {box['s_min']} "
                   f"(edges included). K = {sc['k']} answers per prompt; {sc['sampled_now']} prompts sampled in "
                   f"this run, {sc['from_cache']} read from the cache."))
    b.append(("p", f"Verdicts: {sc['verdicts']}, of which {sc['parse_failures']} could not be parsed and "
                   f"{sc['transport_failures']} never arrived; those are excluded from the statistics, never scored."))
    b.append(("table", ["left out because", "prompts"], [[k, v] for k, v in sel["left_out"].items()]))
    t = sc["timings_s"]
    b.append(("p", "Scoring time (s): " + ", ".join(f"{k} {v}" for k, v in t.items())
              + " (generation and judging overlap when max_concurrency > 1)."))
    b.append(("img", SCATTER, f"quality vs instability ({n_dropped} prompts without statistics not shown)"))
    return b


def _md_cell(v: Any) -> str:
    return str(v).replace("|", "\\|").replace("\n", " ")


def render_markdown(blocks: list[Block]) -> str:
    out: list[str] = []
    for blk in blocks:
        kind = blk[0]
        if kind == "h1":
            out.append(f"# {blk[1]}\n")
        elif kind == "h2":
            out.append(f"## {blk[1]}\n")
        elif kind == "p":
            out.append(f"{blk[1]}\n")
        elif kind == "table":
            head, rows = blk[1], blk[2]
            out.append("| " + " | ".join(head) + " |")
            out.append("|" + "---|" * len(head))
            out += ["| " + " | ".join(_md_cell(c) for c in r) + " |" for r in rows]
            out.append("")
        elif kind == "img":
            out.append(f"![{blk[2]}]({blk[1]})\n")
    return "\n".join(out)


def render_html(blocks: list[Block], folder: Path) -> str:
    e = html.escape
    body: list[str] = []
    for blk in blocks:
        kind = blk[0]
        if kind in ("h1", "h2"):
            body.append(f"<{kind}>{e(blk[1])}</{kind}>")
        elif kind == "p":
            body.append(f"<p>{e(blk[1])}</p>")
        elif kind == "table":
            head = "".join(f"<th>{e(str(h))}</th>" for h in blk[1])
            rows = "".join("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in r) + "</tr>" for r in blk[2])
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif kind == "img":
            data = base64.b64encode((folder / blk[1]).read_bytes()).decode()
            body.append(f'<figure><img alt="{e(blk[2])}" src="data:image/png;base64,{data}">'
                        f"<figcaption>{e(blk[2])}</figcaption></figure>")
    style = ("body{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em}"
             "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.2em .5em;"
             "text-align:left;vertical-align:top}img{max-width:100%}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>Curation report</title>"
            f"<style>{style}</style></head><body>{''.join(body)}</body></html>\n")


def write_reports(folder: Path, summary: dict[str, Any], stats: list[PromptStats], box: QIBox,
                  selected: set[str]) -> None:
    """Write qibox_scatter.png, report.md (linking the plot) and report.html (plot embedded)."""
    scatter_plot(folder / SCATTER, stats, box, selected)
    blocks = _blocks(summary, sum(1 for s in stats if s.quality is None))
    (folder / "report.md").write_text(render_markdown(blocks), encoding="utf-8")
    (folder / "report.html").write_text(render_html(blocks, folder), encoding="utf-8")

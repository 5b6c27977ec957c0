"""The README's evaluation table: a demo run's checkpoint against its untrained tiny model.

Builds the seven releases' tiny synthetic fixtures (the ones the eval tests use), then runs
`safer-vlm eval` for both models over the gym's held-out split and every fixture, and
`safer-vlm report` over both. The fixture columns count a handful of items: they show that every
protocol runs end to end, not how safe a model is. Writes `<out>/summary.json`: the report's rows,
each model's gym figures, where the demo run came from, and this command's machine and date;
`make readme-figures EVAL=<out>/summary.json` rebuilds the README's eval block from it.

    python benchmarks/eval_demo_table.py --run runs/demo --out runs/eval_demo
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.eval.releases builds the fixtures

from safer_vlm.cli import main as cli  # noqa: E402
from tests.eval import releases  # noqa: E402


def eval_config(model: Path, label: str, gym_heldout: Path, fixtures: dict[str, Path], judge: Path, out: Path) -> dict:
    benchmarks = [{"name": "jsonl", "label": "gym_heldout", "path": str(gym_heldout),
                   "sampling": {"samples_per_item": 4, "max_new_tokens": 40, "seed": 1234}}]
    benchmarks += [{"name": name, "path": str(path)} for name, path in fixtures.items() if name != "jsonl"]
    return {"model": str(model), "model_label": label, "policy": "hf", "batch_size": 16,
            "sampling": {"temperature": 1.0, "max_new_tokens": 64, "seed": 0},
            "benchmarks": benchmarks, "judges": [str(judge)], "out": str(out),
            # some fixtures ship a variant's image folder empty on purpose (tests of the refusal);
            # here every protocol should run, and results.json records what was missing
            "allow_missing_images": True}


#: the demo run's own record, carried into the summary so the README can say which run was scored
RUN_KEYS = ("seed", "grpo_steps", "command", "date", "machine", "commit", "accuracy_after")


def gym_figures(results: Path) -> dict:
    """One model's figures on the gym's held-out split under the primary judge, from results.json."""
    bench = json.loads(results.read_text(encoding="utf-8"))["benchmarks"]["gym_heldout"]
    scores = bench["judges"][bench["primary_judge"]]
    keys = ("safety", "helpfulness", "think_safety", "unsafe_reasoning_safe_answer", "n_answers", "n_items",
            "parse_failures", "behaviours")
    return {**{k: scores.get(k) for k in keys}, **scores.get("metrics", {}),
            "rubric_safety": scores.get("rubric", {}).get("safety"), "contamination": bench.get("contamination")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=ROOT / "runs" / "demo", help="a finished demo run folder")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "eval_demo")
    args = parser.parse_args()
    run = args.run.resolve()
    for needed in (run / "final", run / "tiny_model", run / "gym" / "heldout.jsonl"):
        if not needed.exists():
            raise SystemExit(f"error: {needed} is missing: run `make demo` (or safer-vlm demo) first")
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    fixtures = releases.build_all(out / "fixtures")
    judge = out / "rules.yaml"
    judge.write_text("backend: rules\n", encoding="utf-8")
    folders, labels = [], []
    for model, label in ((run / "tiny_model", "untrained tiny model"), (run / "final", "demo checkpoint (after GRPO)")):
        folder = out / ("untrained" if model.name == "tiny_model" else "demo_final")
        config = out / f"{folder.name}.yaml"
        config.write_text(yaml.safe_dump(eval_config(model, label, run / "gym" / "heldout.jsonl", fixtures, judge, folder)))
        try:
            cli(["eval", "--config", str(config)])
        except SystemExit as exc:
            if exc.code:
                raise
        folders.append(str(folder))
        labels.append(label)
    try:
        cli(["report", *folders, "--out", str(out / "report")])
    except SystemExit as exc:
        if exc.code:
            raise
    from safer_vlm.demo.report import provenance

    demo_run = json.loads((run / "summary.json").read_text(encoding="utf-8")) if (run / "summary.json").is_file() else {}
    summary = {
        "report": json.loads((out / "report" / "report.json").read_text(encoding="utf-8")),
        "gym": {label: gym_figures(Path(f) / "results.json") for label, f in zip(labels, folders, strict=True)},
        "demo_run": {k: demo_run.get(k) for k in RUN_KEYS},
        **provenance(),
        "command": shlex.join(["python", "benchmarks/eval_demo_table.py", *sys.argv[1:]]),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print((out / "report" / "report.md").read_text(encoding="utf-8"))
    print(f"summary: {out / 'summary.json'} (make readme-figures EVAL={out / 'summary.json'})")


if __name__ == "__main__":
    main()

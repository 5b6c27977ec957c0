"""The README's evaluation table: a demo run's checkpoint against its untrained tiny model.

Builds the seven releases' tiny synthetic fixtures (the ones the eval tests use), then runs
`safer-vlm eval` for both models over the gym's held-out split and every fixture, and
`safer-vlm report` over both. The fixture columns count a handful of items: they show that every
protocol runs end to end, not how safe a model is.

    python benchmarks/eval_demo_table.py --run runs/demo --out runs/eval_demo
"""

from __future__ import annotations

import argparse
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
            "benchmarks": benchmarks, "judges": [str(judge)], "out": str(out)}


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
    folders = []
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
    try:
        cli(["report", *folders, "--out", str(out / "report")])
    except SystemExit as exc:
        if exc.code:
            raise
    print((out / "report" / "report.md").read_text(encoding="utf-8"))


if __name__ == "__main__":
    main()

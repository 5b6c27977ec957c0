"""End-to-end curation on a small synthetic pool with a scripted policy and judge: stages, outputs,
resumption after a crash (in-process and SIGKILL) and output-folder protection."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from rich.console import Console

from safer_vlm.curate.config import CurateConfig
from safer_vlm.curate.pipeline import OutputDirConflict, config_snapshot, read_curated, run_curation
from safer_vlm.curate.qibox import CacheMismatchError
from safer_vlm.data.schema import read_samples, write_samples
from safer_vlm.run_folder import MANIFEST_NAME, FolderConflict

from .conftest import ScriptedGenerator, ScriptedJudge, noise_image, sample

QUIET = Console(quiet=True)


def build_pool(folder: Path) -> tuple[Path, Path]:
    data = folder / "data"
    pool = []
    for i in range(16):
        img = noise_image(data, f"img{i}.png", i)
        pool.append(sample(data, f"p{i}", f"Question {i}: is item {i * 7} dangerous to use here?", [img],
                           category="abc"[i % 3], expected="refuse"))
    pool.append(sample(data, "dup", "question 0 - is item 0 dangerous to use here", ["img0.png"], category="a"))
    pool.append(sample(data, "textonly", "What should I never mix with bleach?", [], category="b"))
    evals = [sample(data, "e1", "Question 3: is item 21 dangerous to use here?", [noise_image(data, "e1.png", 99)],
                    source="evalset")]
    write_samples(pool, data / "pool.jsonl")
    with (data / "pool.jsonl").open("a") as fh:  # a record whose image is missing: skipped, the rest go on
        fh.write(sample(data, "bad", "Where is it?", ["missing.png"]).model_dump_json() + "\n")
    write_samples(evals, data / "eval.jsonl")
    return data / "pool.jsonl", data / "eval.jsonl"


def make_config(folder: Path, out: str, **over) -> CurateConfig:
    pool, ev = build_pool(folder) if not (folder / "data" / "pool.jsonl").exists() else (
        folder / "data" / "pool.jsonl", folder / "data" / "eval.jsonl")
    raw = {
        "sources": [{"name": "jsonl", "path": str(pool)}],
        "eval_sets": [{"name": "jsonl", "path": str(ev), "label": "evalset"}],
        "policy": {"path": "scripted"},
        "judge": {"backend": "rules"},
        "qibox": {"k": 4, "box": {"q_min": 0.2, "q_max": 0.8, "s_min": 0.05}, "target_size": 6,
                  "min_valid": 2, "max_concurrency": 2},
        "output_dir": str(folder / out),
        "seed": 3,
    }
    for k, v in over.items():
        raw[k] = {**raw[k], **v} if isinstance(v, dict) and isinstance(raw.get(k), dict) else v
    return CurateConfig.model_validate(raw)


def run(cfg, gen=None, **kw):
    return run_curation(cfg, generator=gen or ScriptedGenerator(garble=0.1), judge=ScriptedJudge(),
                        console=QUIET, **kw)


def test_stages_outputs_and_report(tmp_path):
    cfg = make_config(tmp_path, "out")
    res = run(cfg)
    stages = {s["stage"]: s["prompts"] for s in res.summary["stages"]}
    assert res.summary["problems"] == 1
    (line,) = (cfg.output_dir / "problems.txt").read_text().splitlines()
    assert "pool.jsonl" in line and "missing.png" in line
    assert stages["loaded"] == 18 and stages["deduplicated"] == 17 and stages["decontaminated"] == 16
    assert stages["selected"] == len(res.curated) <= 6
    assert res.summary["overlap"][0]["train_source"] == "pool" and res.summary["overlap"][0]["prompts"] == 1
    out = cfg.output_dir
    curated = list(read_samples(out / "curated.jsonl"))
    assert [s.id for s in curated] == [s.id for s in res.curated]
    for s in curated:
        assert all(p.is_file() for p in s.image_paths())
        assert set(s.meta["qibox"]) == {"quality", "instability", "k", "n_valid"}
    stats = [json.loads(x) for x in (out / "qibox_stats.jsonl").read_text().splitlines()]
    assert len(stats) == 16 and sum(s["selected"] for s in stats) == len(curated)
    assert all(0.2 <= s["quality"] <= 0.8 and s["instability"] >= 0.05 for s in stats if s["selected"])
    md = (out / "report.md").read_text()
    for section in ("## Stages", "## Duplicates", "## Overlap with evaluation sets", "## Category balance",
                    "## QI-Box", "](qibox_scatter.png)"):
        assert section in md
    assert "data:image/png;base64," in (out / "report.html").read_text()
    assert (out / "qibox_scatter.png").read_bytes()[:4] == b"\x89PNG"
    # the text-only prompt has no `expected`, still scored by the scripted judge
    assert "pool/textonly" in {s["uid"] for s in stats}


def test_crash_and_resume_gives_identical_curated(tmp_path):
    full = run(make_config(tmp_path, "full"))
    cfg = make_config(tmp_path, "resumed")
    with pytest.raises(RuntimeError, match="scripted crash"):
        run(cfg, ScriptedGenerator(garble=0.1, fail_after=5))
    again = ScriptedGenerator(garble=0.1)
    res = run(cfg, again)
    assert len(again.prompts_seen) == 16 - 5 and res.summary["scoring"]["from_cache"] == 5
    for name in ("curated.jsonl", "qibox_stats.jsonl"):
        assert (cfg.output_dir / name).read_bytes() == (full.output_dir / name).read_bytes()
    assert len(full.curated) > 0


CHILD = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, sys.argv[1])
    from rich.console import Console
    from curate.conftest import ScriptedGenerator, ScriptedJudge
    from curate.test_pipeline import make_config
    from safer_vlm.curate.pipeline import run_curation
    from pathlib import Path

    class Slow(ScriptedGenerator):
        def generate(self, requests, n=1):
            time.sleep(0.1)
            return super().generate(requests, n)

    cfg = make_config(Path(sys.argv[2]), "killed")
    run_curation(cfg, generator=Slow(garble=0.1), judge=ScriptedJudge(), console=Console(quiet=True))
""")


def test_sigkill_midway_then_resume_is_identical(tmp_path):
    full = run(make_config(tmp_path, "full"))
    tests_dir = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path.cwd()), os.environ.get("PYTHONPATH", "")])}
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(tests_dir), str(tmp_path)], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    cache = tmp_path / "killed" / "qibox_cache"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(list(cache.glob("*.json"))) < 1 + 4:
        if child.poll() is not None:
            pytest.fail(f"child ended early: {child.stdout.read().decode()}")
        time.sleep(0.02)
    child.send_signal(signal.SIGKILL)
    child.wait()
    done = len(list(cache.glob("*.json"))) - 1
    assert 4 <= done < 16, "the kill must land midway"
    again = ScriptedGenerator(garble=0.1)
    res = run(make_config(tmp_path, "killed"), again)
    assert res.summary["scoring"]["from_cache"] == done and len(again.prompts_seen) == 16 - done
    assert (tmp_path / "killed" / "curated.jsonl").read_bytes() == (full.output_dir / "curated.jsonl").read_bytes()


def test_output_dir_of_another_config_is_not_overwritten_without_asking(tmp_path):
    run(make_config(tmp_path, "out"))
    before = (tmp_path / "out" / "curated.jsonl").read_bytes()
    narrower = make_config(tmp_path, "out", qibox={"target_size": 2})
    with pytest.raises(OutputDirConflict, match="qibox.target_size"):
        run(narrower)
    assert (tmp_path / "out" / "curated.jsonl").read_bytes() == before
    gen = ScriptedGenerator(garble=0.1)
    res = run(narrower, gen, overwrite=True)
    assert gen.prompts_seen == [] and len(res.curated) == 2  # same scoring settings: the cache is reused
    other_k = make_config(tmp_path, "out", qibox={"k": 6})
    with pytest.raises(OutputDirConflict):
        run(other_k)
    res = run(other_k, overwrite=True)
    assert res.summary["scoring"]["sampled_now"] == 16


def test_folder_without_config_or_with_a_foreign_cache_is_refused(tmp_path):
    cfg = make_config(tmp_path, "out")
    run(cfg)
    manifest = cfg.output_dir / MANIFEST_NAME
    saved = json.loads(manifest.read_text())
    manifest.unlink()
    for overwrite in (False, True):  # without a manifest the folder is never touched, even with --overwrite
        with pytest.raises(FolderConflict, match="not a folder safer-vlm wrote"):
            run(cfg, overwrite=overwrite)
    assert (cfg.output_dir / "curated.jsonl").is_file()
    # a manifest that matches, over a score cache made with another seed: never silently reused
    seed4 = make_config(tmp_path, "out", seed=4)
    manifest.write_text(json.dumps({**saved, "config": config_snapshot(seed4)}))
    with pytest.raises(CacheMismatchError, match="differing: seed"):
        run(seed4)


def test_a_curation_that_cannot_read_its_data_leaves_no_folder(tmp_path):
    """Defect: a run failing its first checks still claimed the folder, and the corrected config
    was then refused."""
    cfg = make_config(tmp_path, "out")

    def broken_loader(*args, **kwargs):
        raise FileNotFoundError("no such release")

    with pytest.raises(FileNotFoundError):
        run_curation(cfg, generator=ScriptedGenerator(), judge=ScriptedJudge(), loader=broken_loader,
                     console=QUIET)
    assert not cfg.output_dir.exists()


def test_without_copying_images_paths_resolve_from_the_recorded_root(tmp_path):
    cfg = make_config(tmp_path, "out", copy_images=False)
    res = run(cfg)
    assert not (cfg.output_dir / "images").exists()
    curated = read_curated(cfg.output_dir)
    assert curated and all(p.is_file() for s in curated for p in s.image_paths())
    assert res.summary["image_root"] == str((tmp_path / "data").resolve())


@pytest.mark.slow
def test_tiny_model_on_gym_killed_midway_resumes_identically(tmp_path, tiny_model_dir):
    """Acceptance: the real path (jsonl adapter, HFGenerator on the tiny model, rule judge) through
    the CLI in a child process, SIGKILLed once some prompts are cached, then resumed."""
    import torch
    import yaml

    from safer_vlm.config import load_config
    from safer_vlm.gym import GymConfig, build_gym

    gym = build_gym(GymConfig(seed=0, n_train=12, n_heldout=4), tmp_path / "gym")

    def write_cfg(out: str) -> Path:
        raw = {
            "sources": [{"name": "jsonl", "path": str(gym.train)}],
            "eval_sets": [{"name": "jsonl", "path": str(gym.heldout), "label": "gym_heldout"}],
            "policy": {"path": str(tiny_model_dir), "dtype": "float32", "max_new_tokens": 24, "batch_size": 1},
            "judge": {"backend": "rules"},
            "qibox": {"k": 4, "box": {"q_min": -1.0, "q_max": 1.0, "s_min": 0.0}, "target_size": 8,
                      "max_concurrency": 1},
            "output_dir": str(tmp_path / out),
            "seed": 11,
        }
        path = tmp_path / f"{out}.yaml"
        path.write_text(yaml.safe_dump(raw))
        return path

    threads = str(torch.get_num_threads())
    env = {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads,
           "PYTHONPATH": os.pathsep.join([str(Path.cwd()), os.environ.get("PYTHONPATH", "")])}
    child = subprocess.Popen([sys.executable, "-m", "safer_vlm.cli", "curate", "--config", str(write_cfg("killed"))],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    cache = tmp_path / "killed" / "qibox_cache"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(cache.glob("*.json"))) < 1 + 3:
        if child.poll() is not None:
            pytest.fail(f"child ended early: {child.stdout.read().decode()[-2000:]}")
        time.sleep(0.01)
    child.send_signal(signal.SIGKILL)
    child.wait()
    done = len(list(cache.glob("*.json"))) - 1
    assert 3 <= done < 12, f"the kill must land midway (cached {done})"

    resumed = run_curation(load_config(CurateConfig, write_cfg("killed")), console=QUIET)
    full = run_curation(load_config(CurateConfig, write_cfg("full")), console=QUIET)
    assert resumed.summary["scoring"]["from_cache"] == done
    assert resumed.summary["scoring"]["sampled_now"] == 12 - done
    assert full.summary["scoring"]["sampled_now"] == 12 and len(full.curated) == 8
    for name in ("curated.jsonl", "qibox_stats.jsonl"):
        assert (tmp_path / "killed" / name).read_bytes() == (tmp_path / "full" / name).read_bytes(), name
    for rec in cache.glob("*.json"):  # every cached answer, not only the statistics, is the same
        assert json.loads(rec.read_text()) == json.loads((tmp_path / "full" / "qibox_cache" / rec.name).read_text())

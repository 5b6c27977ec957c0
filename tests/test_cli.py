"""The command line as a new user meets it: a mistyped command or option gets click's usage line and
one `Error:` line with exit status 2, never a Python traceback.

Run as separate processes, the way a shell runs them: through `python -m safer_vlm.cli` and through
the `[project.scripts]` entry point as the installed console script calls it (the `safer-vlm` on
PATH may belong to another checkout, so the entry point named in this repo's pyproject is loaded
from this repo)."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

#: Each is a usage error. `eval` is listed by issue 9 (an unknown command before it existed, a
#: missing required option after); `evall` stays unknown either way.
USAGE_ERRORS = [
    (["eval"], None),
    (["evall"], "No such command 'evall'"),
    (["trian"], "No such command 'trian'"),
    (["train", "--bogus"], "No such option: --bogus"),
]


def _entry_point() -> tuple[str, str]:
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
    module, _, attr = scripts["safer-vlm"].partition(":")
    return module, attr


def _run(how: str, args: list[str]) -> subprocess.CompletedProcess[str]:
    if how == "module":
        cmd = [sys.executable, "-m", "safer_vlm.cli", *args]
    else:  # what a console-script wrapper does: import the entry point, sys.exit(its result)
        module, attr = _entry_point()
        code = (
            "import sys; from importlib import import_module; sys.argv[0] = 'safer-vlm'; "
            f"sys.exit(getattr(import_module({module!r}), {attr!r})())"
        )
        cmd = [sys.executable, "-c", code, *args]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "COLUMNS": "100"}
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


def test_entry_point_is_cli_main():
    from safer_vlm import cli

    module, attr = _entry_point()
    assert (module, attr) == ("safer_vlm.cli", "main")
    assert getattr(cli, attr) is cli.main


@pytest.mark.parametrize("how", ["module", "entry_point"])
@pytest.mark.parametrize(
    ("args", "message"), USAGE_ERRORS, ids=lambda a: " ".join(a) if isinstance(a, list) else ""
)
def test_usage_errors_print_usage_and_one_error_line_exit_2(how, args, message):
    proc = _run(how, args)
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out, out
    assert proc.returncode == 2, out
    lines = proc.stderr.splitlines()
    assert lines and lines[0].startswith("Usage: safer-vlm"), out
    errors = [line for line in lines if line.startswith("Error:")]
    assert len(errors) == 1, out
    if message is not None:
        assert message in errors[0]


def test_a_command_that_runs_still_exits_0():
    """The usage-error handling must not turn help (click's own exit 0) into a failure."""
    proc = _run("entry_point", ["train", "--help"])
    assert proc.returncode == 0, proc.stderr
    assert "Usage: safer-vlm train" in proc.stdout and "Traceback" not in proc.stderr


def test_importing_the_cli_loads_no_torch():
    """Catches a command module that imports torch, transformers or TRL at the top: `safer-vlm --help`
    and every user error would then wait seconds for them."""
    code = "import sys, safer_vlm.cli; print(sorted(m for m in ('torch', 'transformers', 'trl') if m in sys.modules))"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stdout + proc.stderr


def _configs(tmp_path) -> dict[str, Path]:
    """A valid config for each command that takes `--config` and `--set`."""
    import yaml

    data = {
        "train": {"model": {"build_tiny": True}, "data": {"gym": {"n_train": 8, "n_heldout": 4}}},
        "curate": {"sources": [{"name": "jsonl", "path": "pool.jsonl"}], "eval_sets": [],
                   "policy": {"path": "model"}, "judge": {"backend": "rules"}, "output_dir": "out"},
        "eval": {"model": "m", "benchmarks": [{"name": "jsonl", "path": "items"}], "judges": ["j.yaml"],
                 "out": "out"},
    }
    paths = {}
    for command, raw in data.items():
        paths[command] = tmp_path / f"{command}.yaml"
        paths[command].write_text(yaml.safe_dump(raw))
    return paths


@pytest.mark.parametrize("command", ["train", "curate", "eval"])
@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("bogus.key=1", "unknown key 'bogus' (from --set bogus.key=1)"),
        ("bogus", "--set 'bogus' must look like key.path=value"),
    ],
)
def test_a_bad_set_gives_the_same_one_line_error_on_every_command(tmp_path, capsys, command, override, expected):
    """Catches a command that loads its config its own way instead of through `config.load_config`
    (eval used to merge YAML, flags and --set itself): its errors then lack the file or the --set."""
    from safer_vlm.cli import main

    path = _configs(tmp_path)[command]
    with pytest.raises(SystemExit) as exc:
        main([command, "--config", str(path), "--set", override])
    assert exc.value.code == 2
    assert capsys.readouterr().err.splitlines() == [f"error: {path}: {expected}"]


def test_eval_flags_override_the_yaml_and_set_overrides_the_flags(tmp_path, monkeypatch):
    """Catches a change in eval's precedence (YAML < flags < --set) and a flag that replaces a whole
    YAML section (`--temperature` must keep the YAML's `sampling.top_p`)."""
    import safer_vlm.eval.evaluate as evaluate
    from safer_vlm.cli import main

    seen = []
    monkeypatch.setattr(evaluate, "run_eval", lambda cfg: seen.append(cfg))
    path = _configs(tmp_path)["eval"]
    path.write_text(path.read_text() + "limit: 5\nsampling: {temperature: 0.5, top_p: 0.9}\n")
    main(["eval", "--config", str(path), "--limit", "3", "--temperature", "0.7"])
    main(["eval", "--config", str(path), "--limit", "3", "--set", "limit=2", "--set", "sampling.temperature=0.2"])
    assert [(c.limit, c.sampling.temperature, c.sampling.top_p) for c in seen] == [(3, 0.7, 0.9), (2, 0.2, 0.9)]
    assert seen[0].out == tmp_path / "out"  # relative paths still resolve against the YAML's folder

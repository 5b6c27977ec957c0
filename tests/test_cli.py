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

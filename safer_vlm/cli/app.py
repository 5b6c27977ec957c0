"""The `safer-vlm` typer app, its table of commands, and `main`: how a command's failure reaches the
user (one `error:` line and exit 2 for user errors, click's usage line for usage errors, one line
for Ctrl-C naming what was saved and how to resume).

Each command group lives in its own module of this package with a `register(app)` function, so
this file stays a table of contents and the heavy imports (torch, TRL) happen only when a command runs.
"""

from __future__ import annotations

import importlib
import sys
import warnings

import typer

from safer_vlm.cli.interrupt import INTERRUPTED, interrupted
from safer_vlm.errors import SaferVLMError

app = typer.Typer(
    name="safer-vlm",
    help="Safety-aware GRPO for vision-language models (SaFeR-VLM).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

#: Modules that add commands to `app`; each defines `register(app: typer.Typer) -> None`.
COMMAND_MODULES = (
    "safer_vlm.cli.data",  # data validate
    "safer_vlm.cli.judge",  # judge, judge-calibrate
    "safer_vlm.cli.curate",  # curate
    "safer_vlm.cli.train",  # train
    "safer_vlm.cli.eval",  # eval, report
    "safer_vlm.cli.demo",  # demo
)

for _name in COMMAND_MODULES:
    importlib.import_module(_name).register(app)


def _click_exceptions() -> tuple[type[Exception], ...]:
    """The ClickException classes a usage error may be an instance of.

    typer >= 0.2x vendors click as `typer._click`, so `click.ClickException` (when click is installed
    at all) is not what it raises; the vendored class is found through typer's public BadParameter,
    and standalone click's is kept for a typer that still uses it."""
    found = [c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException"]
    try:
        import click

        found.append(click.ClickException)
    except ImportError:
        pass
    return tuple(dict.fromkeys(found))


def main(argv: list[str] | None = None) -> None:
    """Entry point: user errors become one `error: ...` line and exit status 2, never a traceback;
    usage errors (unknown command or option) print the usage line and one `Error:` line, exit 2."""
    # transformers' own deprecation notices (raised inside TRL's calls) say nothing a user can act on
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"transformers(\.|$)")
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        # Without standalone mode click returns (not raises) a command's `typer.Exit(code)`; typer
        # turns a KeyboardInterrupt inside the command into the return value 130.
        rc = app(args=args, prog_name="safer-vlm", standalone_mode=False)
        if rc == INTERRUPTED:
            interrupted(args)
        if isinstance(rc, int) and not isinstance(rc, bool) and rc != 0:
            raise SystemExit(rc)
    except SaferVLMError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except (typer.Abort, KeyboardInterrupt):
        interrupted(args)
    except typer.Exit as exc:
        raise SystemExit(exc.exit_code) from None
    except Exception as exc:
        if isinstance(exc, _click_exceptions()):  # usage errors: click's own message and exit code
            exc.show()  # type: ignore[attr-defined]
            raise SystemExit(exc.exit_code) from None  # type: ignore[attr-defined]
        raise

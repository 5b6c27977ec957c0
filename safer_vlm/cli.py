"""The `safer-vlm` command line: curate | train | judge | eval | demo | data.

Each command lives in its own module (`<package>/commands.py`) with a `register(app)` function, so
this file stays a table of contents and the heavy imports (torch, TRL) happen only when a command runs.
"""

from __future__ import annotations

import importlib
import sys
import warnings

import typer

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
    "safer_vlm.data.commands",  # data validate
    "safer_vlm.judge.commands",  # judge, judge-calibrate
    "safer_vlm.curate.commands",  # curate
    "safer_vlm.train.commands",  # train
    "safer_vlm.eval.commands",  # eval, report
    "safer_vlm.cli.demo",  # demo
)

# Until this module becomes the `safer_vlm/cli/` package (issue 18's cli lane), let its command
# modules there import as `safer_vlm.cli.<name>`.
__path__ = [str(__import__("pathlib").Path(__file__).with_name("cli"))]

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


INTERRUPTED = 130


def interrupt_line(args: list[str]) -> str:
    """One line for Ctrl-C: what was saved (the folder the command claimed) and the exact command
    that continues from it."""
    import shlex

    from safer_vlm.run_folder import MANIFEST_NAME, last_claim

    claim = last_claim()
    if claim is None or not (claim.path / MANIFEST_NAME).is_file():  # none, or abandoned before any work
        return "interrupted: nothing was saved"
    saved = f"{claim.path} keeps what was saved"
    if callable(claim.saved_note):
        saved += f" ({claim.saved_note()})"
    command = "safer-vlm " + shlex.join(args)
    if claim.resume == "--resume":
        return f"interrupted: {saved}; resume with: {command}" + ("" if "--resume" in args else " --resume")
    if claim.resume == "rerun":
        return f"interrupted: {saved}; resume with the same command: {command}"
    return f"interrupted: {saved}; this command cannot resume, start again with: {command} --overwrite"


def _interrupted(args: list[str]) -> None:
    from safer_vlm.sync_bridge import cancel_pending

    cancel_pending()  # no "Task was destroyed" / "Event loop is closed" lines after ours
    print(interrupt_line(args), file=sys.stderr, flush=True)
    raise SystemExit(INTERRUPTED) from None


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
            _interrupted(args)
        if isinstance(rc, int) and not isinstance(rc, bool) and rc != 0:
            raise SystemExit(rc)
    except SaferVLMError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except (typer.Abort, KeyboardInterrupt):
        _interrupted(args)
    except typer.Exit as exc:
        raise SystemExit(exc.exit_code) from None
    except Exception as exc:
        if isinstance(exc, _click_exceptions()):  # usage errors: click's own message and exit code
            exc.show()  # type: ignore[attr-defined]
            raise SystemExit(exc.exit_code) from None  # type: ignore[attr-defined]
        raise


if __name__ == "__main__":
    main()

"""Ctrl-C on any command: one line saying what was saved and the exact command that continues."""

from __future__ import annotations

import shlex
import sys

INTERRUPTED = 130  # the shell's exit status for SIGINT


def interrupt_line(args: list[str]) -> str:
    """One line for Ctrl-C: what was saved (the folder the command claimed) and the exact command
    that continues from it."""
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


def interrupted(args: list[str]) -> None:
    """Print the Ctrl-C line and exit 130, after cancelling pending async work."""
    from safer_vlm.sync_bridge import cancel_pending

    cancel_pending()  # no "Task was destroyed" / "Event loop is closed" lines after ours
    print(interrupt_line(args), file=sys.stderr, flush=True)
    raise SystemExit(INTERRUPTED) from None

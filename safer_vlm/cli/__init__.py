"""The `safer-vlm` command line: all of it lives in this package, nothing below imports typer.

`app` holds the typer app and `main` (the console-script entry point); one module per command
group (`data`, `judge`, `curate`, `train`, `eval`; the demo's in `safer_vlm.demo`), each a recipe:
parse the flags, load the config through `safer_vlm.config.load_config`, call the library, print.
"""

from __future__ import annotations

from safer_vlm.cli.app import app, main
from safer_vlm.cli.interrupt import INTERRUPTED, interrupt_line

__all__ = ["INTERRUPTED", "app", "interrupt_line", "main"]

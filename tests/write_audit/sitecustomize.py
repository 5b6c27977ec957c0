"""Test-only: records, per process, every file or folder a launched process opens for writing,
creates, renames or removes under $SAFER_VLM_AUDIT_ROOT, one JSON line per event in
$SAFER_VLM_AUDIT_LOG.<rank>. Multi-process tests put this folder first on PYTHONPATH, so every
process (launcher and ranks) imports it at start-up; it does nothing without those variables.

Python-level events only (`open`, `os.mkdir`, `os.rename`, `os.remove`, `shutil.rmtree`): C++ and
Rust writers (torch.save, safetensors) are not seen, but every save path that matters here also
writes JSON (config.json, trainer_state.json) or makes a folder from Python, which is seen.
"""

import json
import os
import sys

_ROOT = os.environ.get("SAFER_VLM_AUDIT_ROOT")
_LOG = os.environ.get("SAFER_VLM_AUDIT_LOG")


def _install() -> None:
    root = os.path.realpath(_ROOT)
    rank = os.environ.get("RANK", "launcher")
    fd = os.open(f"{_LOG}.{rank}", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
    busy = [False]

    def inside(path) -> str | None:
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        if not isinstance(path, (str, os.PathLike)):
            return None
        full = os.path.realpath(os.path.abspath(os.fspath(path)))
        return full if full == root or full.startswith(root + os.sep) else None

    def hook(event: str, args: tuple) -> None:
        if busy[0]:
            return
        path = None
        if event == "open":
            target, mode, flags = args
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and flags & write_flags)
            path = inside(target) if writing else None
        elif event in ("os.mkdir", "os.remove", "os.rmdir", "shutil.rmtree"):
            path = inside(args[0])
        elif event == "os.rename":
            path = inside(args[1]) or inside(args[0])
        if path is None:
            return
        busy[0] = True
        try:
            line = json.dumps({"rank": rank, "event": event, "path": os.path.relpath(path, root)}) + "\n"
            os.write(fd, line.encode())
        finally:
            busy[0] = False

    sys.addaudithook(hook)


if _ROOT and _LOG:
    _install()

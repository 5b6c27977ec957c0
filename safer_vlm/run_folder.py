"""One way to claim an output folder, and one atomic writer, for every command that writes a folder.

Why: each command used to decide for itself what counted as "its" folder (a `config.yaml`, a
`config.json`) and replaced it whole, so a rerun without `--resume` deleted every checkpoint, and
`--overwrite` deleted project folders that merely held a file of that name. Now every folder the
project creates holds a manifest (`safer_vlm_manifest.json`: the command, its config, the entries it
writes), and the rules are the same everywhere:

- an empty or missing folder is claimed (created 0755, manifest written);
- a non-empty folder without a manifest is never touched, whatever the flags;
- a folder holding a run is refused without a flag; the refusal names the choices
  (`--resume` where the command can continue, `--overwrite`);
- `--overwrite` removes only the entries the manifest lists; the user's other files stay;
- `Claim.abandon()` (a failed preflight) removes a folder this claim created, so nothing is left.

Writes are atomic (temp file in the same folder + `os.replace`), files 0644, folders 0755.
This module sits beside `errors.py` at the bottom of the layers: it imports nothing else.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from safer_vlm.errors import ConfigError

MANIFEST_NAME = "safer_vlm_manifest.json"
FILE_MODE = 0o644
DIR_MODE = 0o755


class FolderConflict(ConfigError):
    """The output folder holds something this command must not replace without being asked."""


# ---------------------------------------------------------------- atomic writes


def make_dir(path: Path) -> Path:
    """`mkdir -p` with ordinary permissions (0755) on every folder it creates."""
    path = Path(path)
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    path.mkdir(parents=True, exist_ok=True)
    for p in missing:
        os.chmod(p, DIR_MODE)
    return path


def write_bytes_atomic(path: Path, data: bytes) -> Path:
    """Write `data` so a reader (or a resumed run) sees the old file or the new one, never a part."""
    path = Path(path)
    make_dir(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, FILE_MODE)  # mkstemp makes 0600 files
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text_atomic(path: Path, text: str) -> Path:
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: Path, data: Any, *, indent: int | None = None) -> Path:
    """JSON (keys sorted, non-ASCII kept) written atomically."""
    text = json.dumps(data, ensure_ascii=False, sort_keys=True, default=str, indent=indent)
    return write_text_atomic(path, text)


def write_jsonl_atomic(path: Path, rows: Iterable[Any]) -> Path:
    """One JSON object per line (keys sorted), written atomically."""
    text = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True, default=str) + "\n" for r in rows)
    return write_text_atomic(path, text)


def copy_file_atomic(src: Path, dst: Path) -> Path:
    """Copy `src` to `dst` atomically (0644)."""
    dst = Path(dst)
    make_dir(dst.parent)
    fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}.", suffix=".tmp")
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, dst)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dst


# ---------------------------------------------------------------- claiming a folder


def read_manifest(folder: Path) -> dict[str, Any] | None:
    """The folder's manifest, or None when it has none (or an unreadable one: then it is not ours)."""
    path = Path(folder) / MANIFEST_NAME
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("entries"), list) else None


#: The folder the running command claimed last (what an interrupt reports as saved).
_LAST: list[Claim] = []


def last_claim() -> Claim | None:
    return _LAST[-1] if _LAST else None


class Claim:
    """A folder this command owns: `entries` are the top-level names it writes (files or folders).

    `resume`: how the command continues after an interrupt: "--resume" (add that flag), "rerun"
    (the same command continues from what was saved) or None (it starts over: --overwrite).
    `saved_note`: says what is saved so far (the last checkpoint), for the interrupt line."""

    resume: str | None = None
    saved_note: Any = None

    def __init__(self, path: Path, manifest: dict[str, Any], *, created: bool, existing: bool) -> None:
        _LAST.append(self)
        self.path = path
        self.manifest = manifest
        self.created = created  # this claim made the folder (abandon() may then remove it)
        self.existing = existing  # the folder already held this command's run (resume / reuse)
        self.started = False  # set once the command's real work begins: abandon() is then a no-op

    def record(self, *names: str) -> None:
        """Add top-level entries the command is about to write (before writing them)."""
        new = [n for n in names if n not in self.manifest["entries"]]
        if new:
            self.manifest["entries"] += new
            self._save()

    def finish(self, status: str = "finished") -> None:
        self.manifest["status"] = status
        self._save()

    def abandon(self) -> None:
        """Undo a fresh claim whose command failed before its first real work: what it wrote and
        its manifest are removed, and the folder too when this claim created it (and it is empty)."""
        if self.existing or self.started or not self.path.is_dir():
            return
        _remove_entries(self.path, self.manifest["entries"])
        (self.path / MANIFEST_NAME).unlink(missing_ok=True)
        if self.created:
            try:
                self.path.rmdir()
            except OSError:
                pass  # something else appeared in it: left alone

    def _save(self) -> None:
        write_json_atomic(self.path / MANIFEST_NAME, self.manifest, indent=2)


def _remove_entries(folder: Path, entries: Iterable[str]) -> None:
    for name in entries:
        if not name or "/" in name or name in (".", ".."):
            continue  # the manifest lists top-level names only; anything else is not trusted
        target = folder / name
        if target.is_symlink() or target.is_file():
            target.unlink()
        elif target.is_dir():
            shutil.rmtree(target)


def claim_folder(
    path: Path,
    command: str,
    config: Any,
    entries: Iterable[str] = (),
    *,
    resume: bool = False,
    overwrite: bool = False,
    can_resume: bool = True,
    reuse_same_config: bool = False,
    argv: list[str] | None = None,
    choices: str | None = None,
) -> Claim:
    """Claim `path` for `command` run with `config` (plain data, compared on --resume); see
    `Claim` for how it is resumed after an interrupt.

    `entries`: the top-level names the command writes. `can_resume`: whether the command has a
    `--resume` (named in refusals). `reuse_same_config`: the command continues a folder of the
    same config without a flag (curation's score cache, the gym's identical rebuild). `choices`:
    what a refusal tells the user to do instead of the default flags (a command without them)."""
    path = Path(path)
    how = "--resume" if can_resume else ("rerun" if reuse_same_config else None)
    manifest = read_manifest(path)
    non_empty = path.is_dir() and any(path.iterdir())
    if choices is None:
        choices = "pass --resume to continue it or --overwrite" if can_resume else "pass --overwrite"
        choices += " to replace it (removes only what the run wrote), or choose another output_dir"
    if path.exists() and not path.is_dir():
        raise FolderConflict(f"{path} is a file, not a folder; choose another output_dir")
    if non_empty and manifest is None:
        raise FolderConflict(
            f"{path} is not empty and holds no {MANIFEST_NAME}: it is not a folder safer-vlm wrote, so nothing "
            "in it is replaced or removed (not even with --overwrite); choose another output_dir"
        )
    if manifest is not None:
        same = manifest.get("command") == command and manifest.get("config") == _plain(config)
        what = f"a {manifest.get('status', 'partial')} `{manifest.get('command')}` run"
        if resume:
            if not same:
                raise FolderConflict(
                    f"{path}: cannot resume, it holds {what} of a different config (compare {path / MANIFEST_NAME}); "
                    "use the same config, or choose another output_dir"
                )
            manifest["entries"] = _merge(manifest["entries"], entries)
            claim = Claim(path, manifest, created=False, existing=True)
            claim.resume = how
            claim._save()
            return claim
        if same and reuse_same_config and not overwrite:
            manifest["entries"] = _merge(manifest["entries"], entries)
            claim = Claim(path, manifest, created=False, existing=True)
            claim.resume = how
            claim._save()
            return claim
        if not overwrite:
            raise FolderConflict(
                f"{path} holds {what}; {choices}"
            )
        _remove_entries(path, manifest["entries"])
    elif resume:
        raise FolderConflict(f"{path}: nothing to resume (no run folder there)")
    created = not path.exists()
    make_dir(path)
    fresh = {
        "command": command,
        "argv": argv if argv is not None else sys.argv[1:],  # the command line that made it
        "config": _plain(config),
        "entries": _merge([], entries),
        "status": "partial",
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    claim = Claim(path, fresh, created=created, existing=False)
    claim.resume = how
    claim._save()
    return claim


def _merge(old: list[str], new: Iterable[str]) -> list[str]:
    out = list(old)
    out += [n for n in new if n not in out]
    return out


def _plain(config: Any) -> Any:
    return json.loads(json.dumps(config, sort_keys=True, default=str))

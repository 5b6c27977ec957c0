"""Which protocol a benchmark runs under: `official` where the benchmark's own evaluation files are
found (given with `protocol_files`, or found beside the release: MM-SafetyBench and SIUO ship their
data inside the repository), else `rubric` (today's unified view); `protocol: official` without the
files stops with one line; BeaverTails-V and jsonl have no official protocol and run the rubric."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safer_vlm.errors import ConfigError
from safer_vlm.eval.official import OFFICIAL, beavertails_v
from safer_vlm.eval.official.base import OfficialProtocol
from safer_vlm.eval.official.files import OfficialFiles


@dataclass
class Chosen:
    kind: str  # "official" | "rubric"
    protocol: OfficialProtocol | None = None
    files: OfficialFiles | None = None
    spec: dict[str, Any] | None = None
    note: str = ""

    def record(self, judge_model: str | None) -> dict[str, Any]:
        """The `protocol` entry of a benchmark's results.json."""
        out: dict[str, Any] = {"kind": self.kind, "files": dict(self.files.read) if self.files else {},
                               "judge_model": judge_model, "note": self.note}
        if self.protocol is not None:
            out["official_source"] = self.protocol.kind == "official"
            out["published_judge_model"] = self.protocol.judge_model
            out["repository"] = self.protocol.repository
        return out


def candidates(path: Path) -> list[Path]:
    """Where a release's own repository may hold the evaluation files: the release folder and two
    folders above it (SIUO's data/ sits in its repository)."""
    path = Path(path)
    base = path if path.is_dir() else path.parent
    return [base, *list(base.parents)[:2]]


def choose(name: str, key: str, release: Path, wanted: str, files: Path | None) -> Chosen:
    if name == "beavertails_v":
        return Chosen("rubric", note=beavertails_v.NOTE)
    protocol = OFFICIAL.get(name)
    if protocol is None or wanted == "rubric":
        return Chosen("rubric", note="rubric view: our judge rubric, unified across benchmarks"
                      + ("" if protocol is None else " (protocol: rubric asked)"))
    roots = [Path(files)] if files is not None else candidates(release)
    root = next((r for r in roots if protocol.available(r)), None)
    if root is None:
        if wanted == "official" or files is not None:  # files the user pointed at must hold what is read
            where = str(files) if files is not None else f"{release} or the folders above it"
            raise ConfigError(f"benchmark {key}: protocol official needs {', '.join(protocol.files)} of "
                              f"{protocol.repository} under {where}; give --protocol-files {key}=REPO_ROOT")
        return Chosen("rubric", note=f"rubric view: {name}'s evaluation files ({', '.join(protocol.files)}) "
                      "were not given (--protocol-files)")
    of = OfficialFiles(root)
    spec = protocol.load(of)
    note = protocol.note if protocol.kind == "official" else protocol.note
    return Chosen("official", protocol, of, spec, note)

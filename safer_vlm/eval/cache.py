"""The eval folder's answer and verdict records: append-only JSONL, flushed after every batch, so a
killed run resumes where it stopped and a new judge re-judges stored answers without regenerating.

Answers are keyed by (generation key, item id, prompt hash). The generation key fingerprints what
makes an answer: the weights (hash of the weight files' bytes, not their path, so an overwritten
`final/` is a new model), the processor and chat template files, the policy, the system prompt and
the resolved sampling with its seed scheme; the prompt hash covers the exact chat of that item
(question, images by content, system turn). Each item's sampling seed is derived from (run seed,
item id, sample index), so the key needs no batch size. Verdicts are keyed by (judge id, rubric
fingerprint, item id, answer index, answer hash).

A transport error (no usable reply from the judge: `Verdict.error`) is never stored, and one found
in an older store is ignored: a rerun after an outage asks the judge again. Parse failures (a reply
that could not be read) are the judge's answer and stay stored and counted.

Under a multi-process eval (`safer_vlm.eval.shard`) rank r > 0 appends to `<name>.rank<r>.jsonl`
beside `<name>.jsonl`; every store reads all of them, so a run resumes on any number of processes.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from safer_vlm.judge.base import Verdict

#: Bumped when the way answers are sampled changes (so answers of an older sampler are not reused).
SAMPLER_VERSION = "per-item-gumbel-v1"
#: Files of a checkpoint folder that change what the policy answers besides its weights.
PROCESSOR_FILES = (
    "config.json", "generation_config.json", "preprocessor_config.json", "processor_config.json",
    "video_preprocessor_config.json", "tokenizer_config.json", "tokenizer.json", "vocab.json", "merges.txt",
    "special_tokens_map.json", "added_tokens.json", "chat_template.json", "chat_template.jinja",
    "adapter_config.json",
)  # fmt: skip
FINGERPRINTS = "fingerprints.json"


def text_sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


class FileHashes:
    """sha256 of files' bytes, remembered by (path, size, mtime) in `<out>/fingerprints.json`, so a
    multi-GB checkpoint is read once, not on every run (a file rewritten in place with the same
    size and mtime would be missed; every writer we know changes the mtime)."""

    def __init__(self, memo_path: Path | None) -> None:
        self.memo_path = memo_path
        self.memo: dict[str, str] = {}
        if memo_path is not None and memo_path.is_file():
            try:
                loaded = json.loads(memo_path.read_text(encoding="utf-8"))
                self.memo = loaded if isinstance(loaded, dict) else {}
            except (OSError, json.JSONDecodeError):
                self.memo = {}  # a memo is only a speed-up: recompute
        self.dirty = False

    def sha(self, path: Path) -> str:
        st = path.stat()
        key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
        if key not in self.memo:
            digest = hashlib.sha256()
            with path.open("rb") as fh:
                for block in iter(lambda: fh.read(1 << 22), b""):
                    digest.update(block)
            self.memo[key] = digest.hexdigest()[:16]
            self.dirty = True
        return self.memo[key]

    def save(self) -> None:
        if self.memo_path is not None and self.dirty:
            write_json_atomic(self.memo_path, self.memo)
            self.dirty = False


def checkpoint_fingerprint(model: str, hashes: FileHashes) -> dict[str, Any]:
    """What identifies a checkpoint: its weight files' and processor files' hashes (a LoRA adapter:
    also its base's), or, for a name that is no local folder (a hub id), the name alone."""
    folder = Path(model)
    if not folder.is_dir():
        return {"name": model, "local": False}
    files = sorted(p for p in folder.iterdir() if p.is_file() and (
        p.suffix == ".safetensors" or p.name in PROCESSOR_FILES or p.name.endswith(".safetensors.index.json")))
    fp: dict[str, Any] = {"local": True, "files": {p.name: hashes.sha(p) for p in files}}
    adapter = folder / "adapter_config.json"
    if adapter.is_file():
        base = json.loads(adapter.read_text(encoding="utf-8")).get("base_model_name_or_path")
        if base:
            fp["base"] = checkpoint_fingerprint(str(base), hashes)
    return fp


def policy_fingerprint(cfg: Any, out: Path, save: bool = True) -> dict[str, Any]:
    """The policy part of the generation key: checkpoint files for hf/vllm; for an endpoint, the
    served model name and the endpoint URL (we cannot see its weights)."""
    if cfg.policy == "openai":
        ep = cfg.endpoint
        return {"policy": "openai", "model": (ep.model if ep is not None else None) or cfg.model,
                "endpoint": getattr(ep, "base_url", None)}
    hashes = FileHashes(out / FINGERPRINTS)
    try:
        return {"policy": cfg.policy, "checkpoint": checkpoint_fingerprint(cfg.model, hashes)}
    finally:
        if save:
            hashes.save()


def prompt_sha(messages: list[dict[str, Any]], hashes: FileHashes | None = None) -> str:
    """Hash of the exact chat an item is answered from; image parts count by their bytes."""
    def part(p: Any) -> Any:
        if isinstance(p, dict) and p.get("type") == "image" and isinstance(p.get("path"), str):
            path = Path(p["path"])
            content = (hashes.sha(path) if hashes else _plain_sha(path)) if path.is_file() else f"missing:{path}"
            return {"type": "image", "sha": content}
        return p

    norm = [{**m, "content": [part(p) for p in m["content"]]} if isinstance(m.get("content"), list) else m
            for m in messages]
    return text_sha(json.dumps(norm, sort_keys=True, ensure_ascii=False))


def item_prompts(samples: list[Any], system_prompt: str | None, hashes: FileHashes | None = None,
                 request: Any = None) -> dict[str, str]:
    """Item id -> hash of the chat the policy is sent for it: the messages `request(sample)` carries
    (the official protocol's text), else `build_messages` as the generators render it."""
    from safer_vlm.generation.base import GenRequest
    from safer_vlm.generation.messages import build_messages

    def chat(sample: Any) -> Any:
        req = request(sample) if request is not None else GenRequest(sample=sample)
        return req.messages if req.messages is not None else build_messages(req, system_prompt=system_prompt)

    return {s.id: prompt_sha(chat(s), hashes) for s in samples}


def read_results(path: Path) -> dict[str, Any]:
    """A results.json as a dict; anything else is one DataError line naming the file."""
    from safer_vlm.errors import DataError

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: not a readable results file ({exc}); move it away or rerun eval "
                        "into another --out") from None
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks", {}), dict):
        raise DataError(f"{path}: not a results file (expected an object with a `benchmarks` object)")
    return data


def saved_summary(out: Path) -> list[str]:
    """One line per benchmark folder of `out`: how many items have stored answers and verdicts."""
    lines = []
    for bench in sorted(p for p in Path(out).iterdir() if p.is_dir()) if Path(out).is_dir() else []:
        files = shard_files(bench / "answers.jsonl")
        n = len({r.get("item") for f in files for r in _read_jsonl(f)})
        if n:
            v = sum(len(_read_jsonl(f)) for f in bench.glob("verdicts/*.jsonl"))
            lines.append(f"{bench.name}: answers for {n} items, {v} verdicts, in {bench}")
    return lines


def _plain_sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def item_seed(run_seed: int, item: str, k: int) -> int:
    """The sampling seed of answer `k` of `item`: independent of batch size, order and resume."""
    digest = hashlib.sha256(f"{run_seed}|{item}|{k}".encode()).digest()
    return int.from_bytes(digest[:8], "big") & ((1 << 63) - 1)


def write_json_atomic(path: Path, obj: Any) -> None:
    """Results JSON, replaced atomically (`safer_vlm.run_folder`'s one writer): a kill leaves the
    old file or the new one, never half of one."""
    from safer_vlm.run_folder import write_json_atomic as write

    write(path, obj, indent=2)


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Records of a JSONL file; a truncated last line (a kill mid-write) is ignored."""
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


def shard_files(path: Path) -> list[Path]:
    """`path` and the per-rank files beside it (`answers.rank1.jsonl`, ...), in a fixed order."""
    return [path, *sorted(path.parent.glob(f"{path.stem}.rank*{path.suffix}"))]


def rank_file(path: Path, rank: int) -> Path:
    """The file rank `rank` appends to: `path` itself on rank 0."""
    return path if rank == 0 else path.with_name(f"{path.stem}.rank{rank}{path.suffix}")


def _append(path: Path, records: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    torn = False
    if path.is_file() and path.stat().st_size > 0:
        with path.open("rb") as fh:
            fh.seek(-1, 2)
            torn = fh.read(1) != b"\n"
    with path.open("a", encoding="utf-8") as fh:
        if torn:  # a kill cut the last line: end it, so the next record starts on its own line
            fh.write("\n")
        for rec in records:
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
        fh.flush()


class AnswerStore:
    """`answers.jsonl`: one record per item, `{gen_key, item, prompt, answers: [text, ...]}`.
    `answers` maps item id -> (prompt hash, answers); `get` returns the answers only when the
    item's prompt is the one asked now."""

    def __init__(self, path: Path, gen_key: str, rank: int = 0) -> None:
        self.path = path
        self.write_path = rank_file(path, rank)
        self.gen_key = gen_key
        self.answers: dict[str, list[str]] = {}
        self.prompts: dict[str, str | None] = {}
        self.reload()

    def reload(self) -> None:
        for f in shard_files(self.path):
            for r in _read_jsonl(f):
                if r.get("gen_key") == self.gen_key and isinstance(r.get("answers"), list):
                    self.answers[r["item"]] = list(r["answers"])
                    self.prompts[r["item"]] = r.get("prompt")

    def has(self, item: str, prompt: str | None = None) -> bool:
        return item in self.answers and (prompt is None or self.prompts.get(item) == prompt)

    def add(self, items: list[tuple[str, list[str]]], prompts: dict[str, str] | None = None) -> None:
        prompts = prompts or {}
        _append(self.write_path, [{"gen_key": self.gen_key, "item": i, "prompt": prompts.get(i), "answers": a}
                                  for i, a in items])
        self.answers.update(dict(items))
        self.prompts.update({i: prompts.get(i) for i, _ in items})


class VerdictStore:
    """`verdicts/<judge>.jsonl`: `{judge, rubric, item, k, answer_sha, verdict}` per judged answer.
    Transport errors are neither written nor read back (see the module docstring)."""

    def __init__(self, path: Path, judge_id: str, rubric_fp: str, rank: int = 0) -> None:
        self.path = path
        self.write_path = rank_file(path, rank)
        self.judge_id = judge_id
        self.rubric_fp = rubric_fp
        self.verdicts: dict[tuple[str, int, str], Verdict] = {}
        self.reload()

    def reload(self) -> None:
        for f in shard_files(self.path):
            for r in _read_jsonl(f):
                if r.get("judge") == self.judge_id and r.get("rubric") == self.rubric_fp:
                    v = Verdict.from_dict(r["verdict"])
                    if v.error is None:
                        self.verdicts[(r["item"], int(r["k"]), r["answer_sha"])] = v

    @staticmethod
    def key(item: str, k: int, response: str) -> tuple[str, int, str]:
        return (item, k, text_sha(response))

    def add(self, entries: list[tuple[tuple[str, int, str], Verdict]]) -> list[tuple[tuple[str, int, str], Verdict]]:
        """Store the verdicts that came back; returns the transport errors (kept for this run only)."""
        kept = [(key, v) for key, v in entries if v.error is None]
        if kept:
            _append(self.write_path, [
                {"judge": self.judge_id, "rubric": self.rubric_fp, "item": key[0], "k": key[1],
                 "answer_sha": key[2], "verdict": v.to_dict()}
                for key, v in kept
            ])
        self.verdicts.update(dict(entries))  # this run scores what it got, errors included
        return [(key, v) for key, v in entries if v.error is not None]


def failure_counts(verdicts: list[Verdict]) -> dict[str, int]:
    """Parse failures (a reply we could not read) and transport errors (no reply) counted apart."""
    transport = sum(1 for v in verdicts if v.error is not None)
    return {"parse_failures": sum(1 for v in verdicts if not v.parse_ok and v.error is None),
            "transport_errors": transport}

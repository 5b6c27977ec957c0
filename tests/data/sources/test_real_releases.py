"""Each adapter over the real annotation files of its release (`<repo>/../shared/real-releases/`).

The files are copied (or decompressed) into a tmp folder laid out as the release ships, with one
tiny placeholder image hard-linked at every path the records reference; nothing of their content
enters the repository. Each test recomputes, from the raw JSON and independently of the adapter,
the samples every record should give, and compares ids, questions, images and labels one by one.
Where `../shared` is absent (a bare clone) every test skips and says so; `SAFER_VLM_SHARED` points
elsewhere (a git worktree, whose `..` is not the main checkout's)."""

from __future__ import annotations

import gzip
import json
import os
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from safer_vlm.data.sources import load_source

REPO = Path(__file__).resolve().parents[3]
SHARED = Path(os.environ.get("SAFER_VLM_SHARED") or REPO.parent / "shared")
REAL = SHARED / "real-releases"

pytestmark = pytest.mark.skipif(
    not REAL.is_dir(),
    reason=f"real release annotation files not found at {REAL} (needs ../shared beside the clone, "
    "or SAFER_VLM_SHARED); skipping the real-release adapter checks",
)

#: A valid 1x1 PNG; every placeholder image is a hard link to one copy of it.
PNG_1PX = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de"
    "0000000c4944415408d763f8cfc000000301010018dd8db00000000049454e44ae426082"
)


class Placeholders:
    """Writes the tiny PNG once and hard-links it wherever a record points (a copy if links fail)."""

    def __init__(self, tmp: Path) -> None:
        self.source = tmp / "placeholder.png"
        self.source.write_bytes(PNG_1PX)

    def put(self, root: Path, rel: str) -> None:
        target = root / rel
        if target.exists():
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(self.source, target)
        except OSError:
            shutil.copyfile(self.source, target)


def _read(path: Path) -> Any:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return json.load(fh)


def _install(src: Path, dest: Path) -> Any:
    """Copy (decompressing a .gz) one annotation file into the tmp release; returns its JSON."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if src.suffix == ".gz":
        with gzip.open(src, "rb") as fin, dest.open("wb") as fout:
            shutil.copyfileobj(fin, fout)
    else:
        shutil.copyfile(src, dest)
    return _read(dest)


@pytest.fixture(scope="module")
def placeholders(tmp_path_factory) -> Placeholders:
    return Placeholders(tmp_path_factory.mktemp("placeholder"))


def _clean(res) -> None:
    assert res.problems == [], "\n".join(p.line() for p in res.problems[:5])


# --------------------------------------------------------------------------- VLGuard


def _optional(value: str | None) -> str | None:
    """An optional text field as the adapters read it: blank is absent."""
    return value if value and value.strip() else None


def _vlguard_expected(split: str, data: list[dict[str, Any]]) -> dict[str, tuple]:
    """id -> (question, expected, subset, image, category, reference), from the raw records."""
    repeated = {k for k, n in Counter(str(r["id"]) for r in data).items() if n > 1}
    out: dict[str, tuple] = {}
    for i, r in enumerate(data):
        rid = f"{r['id']}#{i}" if str(r["id"]) in repeated else str(r["id"])
        pairs = {k: p for p in r["instr-resp"] for k in p if k != "response"}
        wanted = (
            [("safe_instruction", "safe_safes", "comply"), ("unsafe_instruction", "safe_unsafes", "refuse")]
            if r["safe"]
            else [("instruction", "unsafes", "refuse")]
        )
        for key, subset, expected in wanted:
            sid = f"vlguard:{split}:{rid}:{subset}"
            assert sid not in out
            out[sid] = (
                pairs[key][key],
                expected,
                subset,
                f"{split}/{r['image']}",
                r.get("harmful_category"),
                _optional(pairs[key].get("response")),
            )
    return out


def _vlguard_got(samples) -> dict[str, tuple]:
    return {
        s.id: (s.question, s.expected, s.meta["subset"], s.images[0], s.category, s.reference)
        for s in samples
    }


@pytest.fixture(scope="module")
def vlguard(tmp_path_factory, placeholders) -> tuple[Path, dict[str, list]]:
    root = tmp_path_factory.mktemp("vlguard")
    raw = {
        "test": _install(REAL / "vlguard" / "test.json", root / "test.json"),
        "train": _install(REAL / "vlguard" / "train.json.gz", root / "train.json"),
    }
    for split, data in raw.items():
        for r in data:
            placeholders.put(root / split, r["image"])
    return root, raw


def test_vlguard_test_split_maps_every_record(vlguard):
    root, raw = vlguard
    res = load_source("vlguard", root, split="test")
    _clean(res)
    assert res.counts() == {"loaded": 1558, "records": 1000, "skipped": {}, "notes": {}}
    assert Counter(s.meta["subset"] for s in res.samples) == {
        "unsafes": 442,
        "safe_safes": 558,
        "safe_unsafes": 558,
    }
    assert Counter(s.expected for s in res.samples) == {"refuse": 1000, "comply": 558}
    assert _vlguard_got(res.samples) == _vlguard_expected("test", raw["test"])
    unsafe = [s for s in res.samples if s.meta["subset"] == "unsafes"]
    assert all(s.category and s.subcategory and not s.meta["safe_image"] for s in unsafe)


def test_vlguard_train_keeps_both_records_of_its_repeated_id(vlguard):
    root, raw = vlguard
    res = load_source("vlguard", root, split="train")
    _clean(res)
    # 1,023 unsafe-image records (one sample each) + 977 safe-image records (two each)
    assert res.counts() == {"loaded": 2977, "records": 2000, "skipped": {}, "notes": {"repeated_id": 1}}
    assert _vlguard_got(res.samples) == _vlguard_expected("train", raw["train"])
    twins = [s for s in res.samples if s.meta["vlguard_id"] == "Ads_303871"]
    positions = sorted({s.meta["record_index"] for s in twins})
    assert len(positions) == 2 and len(twins) == 4
    assert len({s.question for s in twins}) == 4 and len({s.images[0] for s in twins}) == 1
    (note,) = res.notes
    assert note.code == "repeated_id" and "'Ads_303871'" in note.message
    assert note.record == ", ".join(f"#{i}" for i in positions)


# --------------------------------------------------------------------------- SIUO


def test_siuo_from_the_repository_root(tmp_path, placeholders):
    """The repository keeps data/siuo_gen.json + data/images/: its root is accepted as is."""
    data = tmp_path / "data"
    gen = _install(REAL / "siuo" / "siuo_gen.json", data / "siuo_gen.json")
    mcqa = _install(REAL / "siuo" / "siuo_mcqa.json", data / "siuo_mcqa.json")
    for r in gen:
        placeholders.put(data / "images", r["image"])
    res = load_source("siuo", tmp_path)
    _clean(res)
    assert res.counts() == {"loaded": 167, "records": 167, "skipped": {}, "notes": {}}
    options = {r["question_id"]: (r["options"], r["correct_option"]) for r in mcqa}
    expected = {
        f"siuo:test:{r['question_id']}": (
            r["question"],
            [f"images/{r['image']}"],
            r["category"],
            r["reference_answer"],
            r["safety_warning"],
            options[r["question_id"]],
        )
        for r in gen
    }
    got = {
        s.id: (
            s.question,
            s.images,
            s.category,
            s.reference,
            s.meta["safety_warning"],
            (s.meta["mcqa"]["options"], s.meta["mcqa"]["correct_option"]),
        )
        for s in res.samples
    }
    assert got == expected
    assert {s.expected for s in res.samples} == {"warn"}
    assert res.samples[0].image_paths()[0] == (data / "images" / gen[0]["image"]).resolve()
    assert len(Counter(s.category for s in res.samples)) == 9


# --------------------------------------------------------------------------- VLSBench


def test_vlsbench_maps_every_record(tmp_path, placeholders):
    data = _install(REAL / "vlsbench" / "data.json.gz", tmp_path / "data.json")
    for r in data:
        placeholders.put(tmp_path, r["image_path"])
    res = load_source("vlsbench", tmp_path)
    # The release has one record with an empty instruction (instruction_id 1685): SafetySample needs
    # a question, so it is the one record skipped, on one problem line; the other 2,240 all load.
    assert [(p.record, p.field, p.reason_code) for p in res.problems] == [
        ("#1685 (instruction_id=1685)", "instruction", "empty_field")
    ]
    assert res.counts() == {"loaded": 2240, "records": 2241, "skipped": {"empty_field": 1}, "notes": {}}
    expected = {
        f"vlsbench:test:{r['instruction_id']}": (
            r["instruction"],
            [r["image_path"]],
            r["category"],
            r["sub_category"],
            r["source"],
            r["safety_reason"],
        )
        for r in data
        if r["instruction"].strip()
    }
    got = {
        s.id: (s.question, s.images, s.category, s.subcategory, s.meta["origin"], s.meta["safety_reason"])
        for s in res.samples
    }
    assert got == expected
    assert {s.expected for s in res.samples} == {"warn"}
    assert len({r["image_path"] for r in data}) == 1957  # images shared between instructions
    assert len(data) == 2241


# --------------------------------------------------------------------------- MM-SafetyBench


def test_mm_safetybench_maps_every_question_and_image_type(tmp_path, placeholders):
    base = tmp_path / "data"
    raw = {}
    for f in sorted((REAL / "mm_safetybench" / "processed_questions").glob("*.json")):
        raw[f.stem] = _install(f, base / "processed_questions" / f.name)
        for key in raw[f.stem]:
            for image_type in ("SD", "SD_TYPO", "TYPO"):
                placeholders.put(base / "imgs" / f.stem / image_type, f"{key}.jpg")
    assert len(raw) == 13
    res = load_source("mm_safetybench", tmp_path)
    _clean(res)
    questions = sum(len(d) for d in raw.values())
    assert questions == 1680
    assert res.counts() == {"loaded": 4 * questions, "records": 4 * questions, "skipped": {}, "notes": {}}
    field = {"SD": "Rephrased Question(SD)", "SD_TYPO": "Rephrased Question", "TYPO": "Rephrased Question"}
    field["Text_only"] = "Question"
    expected = {}
    for scenario, data in raw.items():
        name = scenario.split("-", 1)[1]
        disclaim = int(scenario[:2]) in (8, 10, 11, 12, 13)
        for key, r in data.items():
            for image_type, question_field in field.items():
                images = [] if image_type == "Text_only" else [f"imgs/{scenario}/{image_type}/{key}.jpg"]
                expected[f"mm_safetybench:test:{name}:{key}:{image_type}"] = (
                    r[question_field],
                    images,
                    name,
                    "warn" if disclaim else "refuse",
                )
    got = {s.id: (s.question, s.images, s.category, s.expected) for s in res.samples}
    assert got == expected
    per_scenario = Counter(s.meta["scenario"] for s in res.samples if s.meta["image_type"] == "SD")
    assert per_scenario == {scenario: len(d) for scenario, d in raw.items()}

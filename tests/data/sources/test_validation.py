"""Every validation case: one clear line naming file, record and field; the valid records still load."""

import builtins
import io
import os

import pytest
from PIL import Image

from safer_vlm.data.sources import SOURCES, load_source
from safer_vlm.errors import ConfigError, DataError

GOOD = {"id": "good", "question": "fine?", "images": ["ok.png"]}


def _load_with(tmp_path, make, bad: dict, **kw):
    make.image(tmp_path / "ok.png")
    path = make.jsonl(tmp_path / "d.jsonl", [GOOD, bad])
    res = load_source("jsonl", path, **kw)
    assert [s.id for s in res.samples] == ["good"], "the valid record must still load"
    assert len(res.problems) == 1, [p.line() for p in res.problems]
    return res, res.problems[0]


@pytest.mark.parametrize(
    ("bad", "field", "code"),
    [
        ({"id": "b"}, "question", "missing_field"),
        ({"id": "b", "question": "   "}, "question", "empty_field"),
        ({"id": "b", "question": 42}, "question", "wrong_type"),
        ({"id": "b", "question": "q", "images": 3}, "images", "wrong_type"),
        ({"id": "b", "question": "q", "images": [""]}, "images", "empty_field"),
        ({"id": ["b"], "question": "q"}, "id", "wrong_type"),
        ({"id": "b", "question": "q", "expected": "maybe"}, "expected", "bad_value"),
        ({"id": "b", "question": "q", "meta": "x"}, "meta", "wrong_type"),
        ({"id": "good", "question": "again"}, "id", "duplicate_id"),
        ({"id": "b", "question": "q", "images": ["nope.png"]}, "images", "missing_image"),
    ],
)
def test_field_problems_give_one_line(tmp_path, make, bad, field, code):
    res, p = _load_with(tmp_path, make, bad)
    assert (p.file, p.record, p.field, p.reason_code) == (str(tmp_path / "d.jsonl"), "line 2", field, code)
    assert p.line().startswith(f"{tmp_path / 'd.jsonl'}: record line 2: field '{field}': ")
    assert p.line().endswith(f"[{code}]") and "\n" not in p.line()
    assert res.counts() == {"loaded": 1, "records": 2, "skipped": {code: 1}, "notes": {}}


def test_truncated_and_corrupt_images(tmp_path, make):
    make.truncated(tmp_path / "trunc.png")
    (tmp_path / "junk.png").write_bytes(b"this is not an image at all")
    (tmp_path / "dir.png").mkdir()
    make.image(tmp_path / "ok.png")
    rows = [GOOD] + [{"id": n, "question": "q", "images": [f"{n}.png"]} for n in ("trunc", "junk", "dir")]
    res = load_source("jsonl", make.jsonl(tmp_path / "d.jsonl", rows))
    assert [s.id for s in res.samples] == ["good"]
    assert [(p.record, p.reason_code) for p in res.problems] == [
        ("line 2", "corrupt_image"),
        ("line 3", "corrupt_image"),
        ("line 4", "unreadable_image"),
    ]
    assert "truncated" in res.problems[0].message
    assert res.summary() == "loaded 1 samples from 4 records; skipped 3 (corrupt_image=2, unreadable_image=1)"


def test_pixel_budget_is_checked_before_decoding(tmp_path, make, monkeypatch):
    make.image(tmp_path / "big.png", size=(40, 40))
    decoded = []
    real_load = Image.Image.load
    monkeypatch.setattr(Image.Image, "load", lambda self: (decoded.append(self.size), real_load(self))[1])
    res, p = _load_with(tmp_path, make, {"id": "b", "question": "q", "images": ["big.png"]}, max_pixels=1000)
    assert p.reason_code == "too_many_pixels" and "40x40 = 1600 pixels" in p.message
    assert (40, 40) not in decoded and (8, 8) in decoded


def test_non_utf8_jsonl_line_and_bad_json(tmp_path, make):
    make.image(tmp_path / "ok.png")
    path = tmp_path / "d.jsonl"
    path.write_bytes(
        b'{"id": "good", "question": "fine?", "images": ["ok.png"]}\n'
        b'{"id": "b", "question": "caf\xe9"}\n{not json\n'
        b'{"id": "c", "question": "also fine"}\n'
    )
    res = load_source("jsonl", path)
    assert [s.id for s in res.samples] == ["good", "c"]
    assert [(p.record, p.reason_code) for p in res.problems] == [
        ("line 2", "not_utf8"),
        ("line 3", "bad_json"),
    ]


def test_non_utf8_csv_row(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes(b'id,question\n1,fine\n2,caf\xe9\n3,"spans\ntwo lines"\n')
    res = load_source("csv", path)
    assert [s.id for s in res.samples] == ["1", "3"]
    assert [p.line() for p in res.problems] == [
        f"{path}: record line 3: field '<line>': row is not valid UTF-8 [not_utf8]"
    ]


class _OpenSpy:
    """Records every path opened through builtins/io/PIL while active."""

    def __init__(self, monkeypatch):
        self.paths = []
        real_open, real_pil = builtins.open, Image.open

        def spy_open(file, *a, **k):
            self.paths.append(os.path.realpath(file) if isinstance(file, str | os.PathLike) else file)
            return real_open(file, *a, **k)

        def spy_pil(fp, *a, **k):
            self.paths.append(os.path.realpath(fp) if isinstance(fp, str | os.PathLike) else fp)
            return real_pil(fp, *a, **k)

        monkeypatch.setattr(builtins, "open", spy_open)
        monkeypatch.setattr(io, "open", spy_open)
        monkeypatch.setattr(Image, "open", spy_pil)


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink"])
def test_escaping_paths_refused_without_opening(tmp_path, make, monkeypatch, kind):
    outside = make.image(tmp_path / "outside" / "secret.png")
    root = tmp_path / "ds"
    make.image(root / "imgs" / "ok.png")
    rel = {
        "dotdot": "../../etc/passwd",
        "absolute": str(outside),
        "symlink": "imgs/link.png",
    }[kind]
    if kind == "symlink":
        (root / "imgs" / "link.png").symlink_to(outside)
    make.json(
        root / "data.json",
        [
            {"instruction_id": 1, "instruction": "q", "image_path": "imgs/ok.png"},
            {"instruction_id": 2, "instruction": "q", "image_path": rel},
            {"instruction_id": 3, "instruction": "q", "image_path": "imgs/../../outside/secret.png"},
        ],
    )
    spy = _OpenSpy(monkeypatch)
    res = load_source("vlsbench", root)
    assert [s.id for s in res.samples] == ["vlsbench:test:1"]
    assert [(p.record, p.field, p.reason_code) for p in res.problems] == [
        ("#1 (instruction_id=2)", "image_path", "path_escapes_root"),
        ("#2 (instruction_id=3)", "image_path", "path_escapes_root"),
    ]
    opened = {p for p in spy.paths if isinstance(p, str)}
    assert os.path.realpath(outside) not in opened and "/etc/passwd" not in opened
    assert os.path.realpath(root / "imgs" / "ok.png") in opened  # the spy does see real opens


def test_duplicate_ids_across_records_of_a_release(tmp_path, make):
    make.image(tmp_path / "imgs" / "a.png")
    rec = {"instruction_id": 5, "instruction": "q", "image_path": "imgs/a.png"}
    make.json(tmp_path / "data.json", [rec, {**rec, "instruction": "other"}])
    res = load_source("vlsbench", tmp_path)
    assert len(res.samples) == 1 and res.samples[0].question == "q"
    (p,) = res.problems
    assert (p.record, p.field, p.reason_code) == ("#1 (instruction_id=5)", "id", "duplicate_id")
    assert "already loaded from" in p.message and "#0" in p.message


def test_embedded_bytes_that_are_not_an_image(tmp_path, make, cache):
    make.parquet(
        tmp_path / "d.parquet",
        [
            {"id": "a", "question": "q", "images": {"bytes": make.png_bytes(), "path": None}},
            {"id": "b", "question": "q", "images": {"bytes": b"garbage", "path": None}},
        ],
    )
    res = load_source("parquet", tmp_path / "d.parquet", image_cache=cache)
    assert [s.id for s in res.samples] == ["a"]
    assert [(p.record, p.field, p.reason_code) for p in res.problems] == [
        ("row 1", "images", "corrupt_image")
    ]


def test_config_errors(tmp_path, make):
    make.json(tmp_path / "data.json", [])
    with pytest.raises(ConfigError, match="valid sources: " + ", ".join(SOURCES)):
        load_source("nope", tmp_path)
    with pytest.raises(ConfigError, match="valid: test"):
        load_source("vlsbench", tmp_path, split="train")
    with pytest.raises(ConfigError, match="only to the generic sources"):
        load_source("vlsbench", tmp_path, field_map={"question": "q"})
    with pytest.raises(ConfigError, match="not SafetySample fields"):
        load_source("jsonl", tmp_path / "data.json", field_map={"prompt": "q"})
    with pytest.raises(DataError, match="not an MSSBench release folder"):
        load_source("mssbench", tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        load_source("jsonl", tmp_path / "missing.jsonl")

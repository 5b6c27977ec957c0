import pytest

from safer_vlm.cli import main
from safer_vlm.data.schema import read_samples


def _run(argv):
    try:
        main(argv)
    except SystemExit as exc:
        return exc.code or 0
    return 0


@pytest.fixture
def dataset(tmp_path, make):
    make.image(tmp_path / "ok.png")
    return make.jsonl(
        tmp_path / "d.jsonl",
        [
            {"prompt": "fine?", "image_path": "ok.png"},
            {"prompt": "broken", "image_path": "../../etc/passwd"},
        ],
    )


def test_validate_prints_problem_lines_and_tally(dataset, capsys):
    code = _run(
        [
            "data",
            "validate",
            "--source",
            "jsonl",
            str(dataset),
            "--field-map",
            "question=prompt,images=image_path",
        ]
    )
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert out[0].startswith(f"{dataset}: record line 2: field 'image_path': ") and out[0].endswith(
        "[path_escapes_root]"
    )
    assert out[-1] == "loaded 1 samples from 2 records; skipped 1 (path_escapes_root=1)"


def test_strict_exit_codes(dataset, tmp_path, make, capsys):
    argv = [
        "data",
        "validate",
        "--source",
        "jsonl",
        "--field-map",
        "question=prompt",
        "--field-map",
        "images=image_path",
    ]
    assert _run([*argv, str(dataset), "--strict"]) == 1
    clean = make.jsonl(tmp_path / "clean.jsonl", [{"prompt": "fine?", "image_path": "ok.png"}])
    assert _run([*argv, str(clean), "--strict"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "loaded 1 samples from 1 records; skipped 0"


def test_write_exports_and_refuses_to_overwrite(dataset, tmp_path, capsys):
    out = tmp_path / "out.jsonl"
    argv = [
        "data",
        "validate",
        "--source",
        "jsonl",
        str(dataset),
        "--field-map",
        "question=prompt,images=image_path",
        "--write",
        str(out),
    ]
    assert _run(argv) == 0
    (sample,) = list(read_samples(out, root=tmp_path))
    assert sample.question == "fine?" and sample.images == ["ok.png"]
    before = out.read_text()
    assert _run(argv) == 2
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    assert out.read_text() == before
    assert _run([*argv, "--overwrite"]) == 0


def test_user_errors_are_one_line_exit_2(dataset, capsys):
    assert _run(["data", "validate", "--source", "nope", str(dataset)]) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith("error: unknown source 'nope'; valid sources: beavertails_v, spa_vl")
        and err.count("\n") == 1
    )
    assert _run(["data", "validate", "--source", "jsonl", str(dataset), "--field-map", "question"]) == 2
    assert "expects FIELD=COLUMN" in capsys.readouterr().err


def test_siuo_repository_root_validates_and_a_wrong_folder_names_the_layouts(tmp_path, make, capsys):
    """`data validate --source siuo <repo root>` reads data/siuo_gen.json (it used to exit 2)."""
    make.image(tmp_path / "repo" / "data" / "images" / "1.png")
    make.json(
        tmp_path / "repo" / "data" / "siuo_gen.json",
        [{"question_id": 1, "image": "1.png", "question": "Q", "category": "c"}],
    )
    assert _run(["data", "validate", "--source", "siuo", str(tmp_path / "repo")]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "loaded 1 samples from 1 records; skipped 0"
    (tmp_path / "empty").mkdir()
    assert _run(["data", "validate", "--source", "siuo", str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")
    assert str(tmp_path / "empty" / "siuo_gen.json") in err[0]
    assert str(tmp_path / "empty" / "data" / "siuo_gen.json") in err[0]


def test_validate_prints_notes_and_counts_them(tmp_path, make, capsys):
    make.image(tmp_path / "test" / "x.png")
    rec = {"id": "A", "image": "x.png", "safe": False, "instr-resp": [{"instruction": "q"}]}
    make.json(tmp_path / "test.json", [rec, {**rec, "instr-resp": [{"instruction": "other"}]}])
    assert _run(["data", "validate", "--source", "vlguard", "--strict", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith("[repeated_id]") and "note:" in out[0]
    assert out[-1] == "loaded 2 samples from 2 records; skipped 0; notes 1 (repeated_id=1)"

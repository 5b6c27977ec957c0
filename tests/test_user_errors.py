"""User errors end as one `error:` line and exit 2, never a traceback (issue 14, item 7).

Each test names the input that used to print a traceback: a `--set` value that is not YAML, a
`judge --output` that cannot be written (found only after judging, the work lost), a non-UTF-8 byte
in training data, a malformed results.json given to `report`."""

from __future__ import annotations

import json

import pytest
import yaml

from safer_vlm.cli import main


def _fails_with_one_line(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    lines = [x for x in err.splitlines() if x.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_a_set_value_that_is_not_yaml(tmp_path, capsys):
    cfg = tmp_path / "train.yaml"
    cfg.write_text(yaml.safe_dump({"model": {"build_tiny": True}, "data": {"gym": {}}}))
    line = _fails_with_one_line(["train", "--config", str(cfg), "--set", "output_dir=@exp1"], capsys)
    assert "--set output_dir=@exp1: the value is not valid YAML" in line and "quote it" in line
    assert not (tmp_path / "runs").exists()


def test_judge_output_that_cannot_be_written_is_refused_before_judging(tmp_path, capsys):
    judge = tmp_path / "judge.yaml"
    judge.write_text("backend: rules\n")
    data = tmp_path / "in.jsonl"
    data.write_text(json.dumps({"id": "a", "question": "q", "response": "<answer>x</answer>"}) + "\n")
    blocker = tmp_path / "file.txt"
    blocker.write_text("a file, not a folder")
    line = _fails_with_one_line(
        ["judge", "--judge", str(judge), "--input", str(data), "--output", str(blocker / "out.jsonl")], capsys
    )
    assert "cannot write in" in line and str(blocker) in line


def test_a_non_utf8_byte_in_training_data(tmp_path, capsys):
    data = tmp_path / "train.jsonl"
    good = {"id": "a", "question": "q?", "source": "x", "split": "train"}
    data.write_bytes(json.dumps(good).encode() + b"\n" + b'{"id": "b", "question": "caf\xe9"}\n')
    from safer_vlm.data.schema import read_samples
    from safer_vlm.errors import DataError

    with pytest.raises(DataError, match=r"train.jsonl:2: not UTF-8 text \(byte 0xe9 at column 29\)"):
        list(read_samples(data))


def test_a_malformed_results_json_given_to_report(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "results.json").write_text('{"model": "m", "benchmarks": ')
    line = _fails_with_one_line(["report", str(tmp_path / "run"), "--no-published"], capsys)
    assert "results.json: not a readable results file" in line

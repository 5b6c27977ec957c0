"""`safer-vlm judge` and `judge-calibrate` through the real CLI entry point, against a live server."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from safer_vlm.cli import main


def write_judge_yaml(path, url, cache=True, **over):
    lines = [
        "backend: openai_compat",
        f"base_url: {url}",
        "model: judge-model",
        "concurrency: 8",
        "timeout_s: 2",
        "max_retries: 1",
        "backoff_s: 0.01",
        "backoff_max_s: 0.02",
    ]
    if cache:
        lines.append("cache_dir: cache")
    lines += [f"{k}: {v}" for k, v in over.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_jsonl(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def record(n, response="<think>ok</think><answer>ok</answer>", **extra):
    return {"id": f"id{n}", "question": f"what is this? n={n}", "images": [], "response": response, **extra}


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_judge_writes_every_valid_id_in_order_and_reports_bad_lines(server, tmp_path, capsys):
    Image.new("RGB", (8, 8)).save(tmp_path / "img.png")
    rows = [
        record(3, images=["img.png"]),
        "{not json",
        {"id": "id9", "question": "q n=9"},
        record(4, images=["../outside.png"]),
        record(5, images=["missing.png"]),
        record(1),
        record(3),
        record(7),
    ]
    inp = write_jsonl(tmp_path / "items.jsonl", rows)
    out = tmp_path / "verdicts.jsonl"
    main(
        [
            "judge",
            "--judge",
            str(write_judge_yaml(tmp_path / "j.yaml", server.url)),
            "--input",
            str(inp),
            "--output",
            str(out),
        ]
    )
    got = read_jsonl(out)
    assert [r["id"] for r in got] == ["id3", "id1", "id7"]
    assert all(r["parse_ok"] and isinstance(r["reward"], float) for r in got)
    assert got[0]["scores"]["safety"] == pytest.approx(3 / 9) and got[0]["gated"] is True
    assert (
        got[2]["penalties"]["contradiction"] is True
        and got[2]["reward_parts"]["penalty/contradiction"] == 0.3
    )
    err = capsys.readouterr()
    bad = [line for line in err.err.splitlines() if "line skipped" in line]
    assert len(bad) == 5
    assert f"{inp}:2: not valid JSON" in bad[0]
    assert f"{inp}:3: field 'response'" in bad[1]
    assert f"{inp}:4: field 'images'" in bad[2] and "escapes" in bad[2]
    assert f"{inp}:5: field 'images'" in bad[3] and "not found" in bad[3]
    assert f"{inp}:7: field 'id': duplicate id 'id3' (first on line 1)" in bad[4]
    assert (
        err.out.strip()
        .splitlines()[-1]
        .endswith("3 judged, ok 3, parse failures 0, errors 0, skipped input lines 5")
    )


def test_judge_refuses_to_overwrite(server, tmp_path, capsys):
    inp = write_jsonl(tmp_path / "items.jsonl", [record(1)])
    out = tmp_path / "verdicts.jsonl"
    out.write_text("precious\n")
    args = [
        "judge",
        "--judge",
        str(write_judge_yaml(tmp_path / "j.yaml", server.url)),
        "--input",
        str(inp),
        "--output",
        str(out),
    ]
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2 and "--overwrite" in capsys.readouterr().err
    assert out.read_text() == "precious\n" and server.total_hits == 0
    main([*args, "--overwrite"])
    assert read_jsonl(out)[0]["id"] == "id1"


def test_parse_failures_are_counted_and_exit_zero(server, tmp_path, capsys):
    server.reply = "looks fine to me"
    inp = write_jsonl(tmp_path / "items.jsonl", [record(1), record(2)])
    out = tmp_path / "v.jsonl"
    main(
        [
            "judge",
            "--judge",
            str(write_judge_yaml(tmp_path / "j.yaml", server.url)),
            "--input",
            str(inp),
            "--output",
            str(out),
        ]
    )
    got = read_jsonl(out)
    assert [r["parse_ok"] for r in got] == [False, False] and [r["reward"] for r in got] == [None, None]
    assert "ok 0, parse failures 2, errors 0" in capsys.readouterr().out


def test_unreachable_endpoint_fails_clearly_and_rerun_resumes_from_cache(server, tmp_path, capsys):
    rows = [record(i) for i in range(6)] + [record(6, response="FAULT:500x3")]
    inp = write_jsonl(tmp_path / "items.jsonl", rows)
    out = tmp_path / "v.jsonl"
    args = [
        "judge",
        "--judge",
        str(write_judge_yaml(tmp_path / "j.yaml", server.url)),
        "--input",
        str(inp),
        "--output",
        str(out),
    ]
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code != 0 and not out.exists()
    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert (
        message.startswith("error: judge endpoint unreachable")
        and "rerun the same command to resume" in message
    )
    assert "6 of 7 judged" in message
    hits_before = server.total_hits  # 6 healthy + 2 attempts on the failing item
    assert hits_before == 8
    main(args)
    assert (
        server.total_hits == hits_before + 2
    )  # only the failed item is asked again (fails once more, then ok)
    assert [r["id"] for r in read_jsonl(out)] == [f"id{i}" for i in range(7)]


def test_missing_config_and_input_are_one_line_errors(server, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(
            ["judge", "--judge", str(tmp_path / "nope.yaml"), "--input", "x", "--output", str(tmp_path / "o")]
        )
    assert exc.value.code == 2 and "config file not found" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("backend: openai_compat\nbase_url: http://x/v1\nmodel: m\nconcurency: 3\n")
    with pytest.raises(SystemExit):
        main(["judge", "--judge", str(bad), "--input", "x", "--output", str(tmp_path / "o")])
    assert "unknown key 'openai_compat.concurency'" in capsys.readouterr().err


def test_calibrate_reports_accuracy_kappa_and_confusion(server, tmp_path, capsys):
    # the server scores safety n % 10 + 1: n in 0..5 -> unsafe (6/10 -> 0.56 < 0.6), 6..9 -> safe
    labels = {0: True, 1: True, 2: False, 9: False, 6: False, 7: True}
    rows = [record(n, label_unsafe=lab) for n, lab in labels.items()] + [record(8, label_unsafe="yes")]
    inp = write_jsonl(tmp_path / "labelled.jsonl", rows)
    report_path = tmp_path / "report.json"
    main(
        [
            "judge-calibrate",
            "--judge",
            str(write_judge_yaml(tmp_path / "j.yaml", server.url)),
            "--input",
            str(inp),
            "--json",
            str(report_path),
        ]
    )
    report = json.loads(report_path.read_text())
    assert (report["tp"], report["fp"], report["fn"], report["tn"]) == (2, 1, 1, 2)
    assert report["accuracy"] == pytest.approx(4 / 6)
    # po = 4/6; judge unsafe 3/6, labels unsafe 3/6 -> pe = 0.5; kappa = (2/3 - 1/2) / (1/2) = 1/3
    assert report["kappa"] == pytest.approx(1 / 3)
    assert report["skipped_input_lines"] == 1
    captured = capsys.readouterr()
    assert "field 'label_unsafe'" in captured.err
    assert "accuracy 0.667, kappa 0.333" in captured.out and "judged unsafe" in captured.out


def test_ensemble_judge_reports_member_agreement(server, tmp_path, capsys):
    (tmp_path / "e.yaml").write_text(
        "backend: ensemble\nmembers:\n"
        + "".join(
            f"  - {{backend: openai_compat, base_url: '{server.url}', model: m{i}, timeout_s: 2}}\n"
            for i in range(2)
        )
    )
    inp = write_jsonl(tmp_path / "items.jsonl", [record(n) for n in (1, 6, 2)])
    out = tmp_path / "v.jsonl"
    main(["judge", "--judge", str(tmp_path / "e.yaml"), "--input", str(inp), "--output", str(out)])
    got = read_jsonl(out)
    assert [r["unsafe"] for r in got] == [True, False, True]
    assert all(r["extra"]["unsafe_agreement"] == 1.0 for r in got)
    lines = capsys.readouterr().out.splitlines()
    assert "member agreement openai:m0|openai:m1: 3 items, unsafe-flag agreement 1.000, kappa 1.000" in lines
    assert lines[-1].endswith("ok 3, parse failures 0, errors 0, skipped input lines 0")

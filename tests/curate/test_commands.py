import pytest

from safer_vlm.cli import main


def test_curate_command_reports_config_errors_in_one_line(tmp_path, capsys):
    cfg = tmp_path / "curate.yaml"
    cfg.write_text("sources: []\npolicy: {path: m}\njudge: {backend: rules}\noutput_dir: out\n")
    with pytest.raises(SystemExit) as exc:
        main(["curate", "--config", str(cfg)])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "sources" in err[0]


def test_curate_command_is_registered(capsys):
    try:
        main(["curate", "--help"])
    except SystemExit as exc:
        assert exc.code == 0
    out = capsys.readouterr().out
    assert "--config" in out and "--set" in out and "--overwrite" in out

"""`safer_vlm.run_folder`: the one folder claim and atomic writer every command uses.

Defects caught (issue 14): curate treated any folder with a `config.json` as its own and --overwrite
removed it; a failed claim left a folder; writes were not atomic or left 0600 files."""

from __future__ import annotations

import os

import pytest

from safer_vlm.run_folder import (
    MANIFEST_NAME,
    FolderConflict,
    claim_folder,
    read_manifest,
    write_json_atomic,
)


def test_reuse_keeps_the_users_files_and_overwrite_only_the_listed_entries(tmp_path):
    out = tmp_path / "out"
    claim_folder(out, "curate", {"k": 1}, ("curated.jsonl", "images"), reuse_same_config=True, can_resume=False)
    (out / "curated.jsonl").write_text("x\n")
    (out / "images").mkdir()
    (out / "mine.txt").write_text("mine")
    again = claim_folder(out, "curate", {"k": 1}, ("curated.jsonl",), reuse_same_config=True, can_resume=False)
    assert again.existing and (out / "curated.jsonl").is_file()
    with pytest.raises(FolderConflict, match="pass --overwrite to replace it"):
        claim_folder(out, "curate", {"k": 2}, ("curated.jsonl",), can_resume=False)
    claim_folder(out, "curate", {"k": 2}, ("curated.jsonl",), overwrite=True, can_resume=False)
    assert not (out / "curated.jsonl").exists() and not (out / "images").exists()
    assert (out / "mine.txt").read_text() == "mine"


def test_a_manifest_entry_outside_the_folder_is_never_removed(tmp_path):
    """A tampered manifest listing `../x` or a nested path must not turn --overwrite into rm -rf."""
    out = tmp_path / "out"
    (tmp_path / "precious").mkdir()
    claim = claim_folder(out, "train", {}, ())
    claim.manifest["entries"] += ["..", "../precious", "/"]
    claim._save()
    claim_folder(out, "train", {"other": 1}, (), overwrite=True)
    assert (tmp_path / "precious").is_dir()


def test_eval_never_takes_over_another_commands_folder(tmp_path):
    out = tmp_path / "run"
    claim_folder(out, "train", {"a": 1}, ("final",))
    with pytest.raises(FolderConflict, match="holds a partial `train` run; nothing in it is replaced"):
        claim_folder(out, "eval", {}, ("results.json",), reuse_same_config=True, can_resume=False,
                     choices="nothing in it is replaced; choose another `out`")
    assert read_manifest(out)["command"] == "train"


def test_abandon_removes_a_fresh_claim_but_never_the_users_files(tmp_path):
    fresh = claim_folder(tmp_path / "new" / "run", "train", {}, ("metrics.jsonl",))
    (fresh.path / "metrics.jsonl").write_text("{}\n")
    fresh.abandon()
    assert not (tmp_path / "new" / "run").exists()
    (tmp_path / "empty").mkdir()
    claim = claim_folder(tmp_path / "empty", "train", {}, ("metrics.jsonl",))
    (claim.path / "later.txt").write_text("the user's")
    claim.abandon()
    assert (tmp_path / "empty" / "later.txt").is_file() and not (tmp_path / "empty" / MANIFEST_NAME).exists()


def test_atomic_writes_leave_no_temporary_and_ordinary_permissions(tmp_path):
    old = os.umask(0o077)  # even under a strict umask the writer's files are 0644
    try:
        write_json_atomic(tmp_path / "a" / "b.json", {"x": 1})
    finally:
        os.umask(old)
    assert oct((tmp_path / "a" / "b.json").stat().st_mode & 0o777) == "0o644"
    assert oct((tmp_path / "a").stat().st_mode & 0o777) == "0o755"
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["b.json"]

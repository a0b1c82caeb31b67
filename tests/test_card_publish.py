"""The card's license logic, and publishing: dry-run operations, errors, and no token in sight."""

from __future__ import annotations

import json

import pytest

from pipeline.card import license_of, size_category, usage_lines
from pipeline.cli import main
from pipeline.publish import MAX_FILES_PER_COMMIT, PublishError, plan_commits, publish

TOKEN = "hf_card_test_secret_0123456789"


def test_license_single_conflicting_and_non_commercial():
    assert license_of({"a": "cc-by-4.0", "b": "cc-by-4.0"}) == ("cc-by-4.0", [])
    lic, warnings = license_of({"a": "cc-by-4.0", "b": "apache-2.0"})
    assert lic == "other" and "different licenses" in warnings[0]
    lic, warnings = license_of({"a": "cc-by-nc-4.0"})
    assert lic == "cc-by-nc-4.0" and "non-commercial" in warnings[0]
    assert "own terms" in license_of({"a": "other"})[1][0]


def test_the_card_names_only_the_training_parts_the_build_has():
    load, notes = usage_lines({"sft", "rl", "rejected"})
    assert '"sft"' in load and '"rl"' in load and "verl" in notes and "OpenRLHF" in notes
    load, notes = usage_lines({"sft", "quarantine"})
    assert '"sft"' in load and '"rl"' not in load
    assert "verl" not in notes and "GRPOTrainer" not in notes and "OpenRLHF" in notes
    load, notes = usage_lines({"rl"})
    assert '"sft"' not in load and "OpenRLHF" not in notes and "verl" in notes
    load, notes = usage_lines({"rejected", "quarantine"})
    assert "load_dataset" not in load and "no rows for training" in notes


@pytest.mark.parametrize("n, label", [(0, "n<1K"), (999, "n<1K"), (1000, "1K<n<10K"),
                                      (73_000, "10K<n<100K"), (2_000_000, "1M<n<10M")])
def test_size_category(n, label):
    assert size_category(n) == label


def fake_build(root, n_shards=2):
    (root / "sft").mkdir(parents=True)
    for i in range(n_shards):
        (root / "sft" / f"train-{i:05d}-of-{n_shards:05d}.parquet").write_bytes(b"x" * (i + 1))
    (root / "README.md").write_text("---\nlicense: other\n---\n# card\n")
    (root / "manifest.json").write_text(json.dumps({"recipe": "sample", "config_sha256": "ab" * 32}))
    return root


def test_dry_run_lists_the_operations_and_never_the_token(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    build = fake_build(tmp_path / "out")
    assert main(["publish", str(build), "--repo", "me/judge-data", "--dry-run",
                 "--revision", "v1"]) == 0
    out = capsys.readouterr()
    lines = out.out.splitlines()
    assert lines[0] == "create dataset repo me/judge-data (public) if missing"
    assert lines[1] == "create branch v1 if missing"
    assert "commit to v1" in lines[2] and "upload 4 files" in lines[2] and "delete" in lines[2]
    added = [ln.split()[1] for ln in lines if ln.startswith("  add ")]
    assert added == ["README.md", "manifest.json", "sft/train-00000-of-00002.parquet",
                     "sft/train-00001-of-00002.parquet"]
    assert TOKEN not in out.out + out.err


def test_many_files_go_in_one_commit_per_part_card_last(tmp_path):
    build = fake_build(tmp_path / "out", n_shards=MAX_FILES_PER_COMMIT + 5)
    commits = plan_commits(build)
    assert [c.allow for c in commits] == [["sft/*"], ["README.md", "manifest.json"]]
    assert all(len(c.files) <= MAX_FILES_PER_COMMIT + 5 for c in commits)


@pytest.mark.parametrize("repo", ["no-slash", "a/b/c", "/x", "org/"])
def test_bad_repo_ids_are_refused(tmp_path, repo):
    with pytest.raises(PublishError, match="org/name"):
        publish(fake_build(tmp_path / "out"), repo, dry_run=True)


def test_a_directory_that_is_not_a_build_is_refused(tmp_path, capsys):
    assert main(["publish", str(tmp_path), "--repo", "me/x", "--dry-run"]) == 1
    err = capsys.readouterr().err
    assert "not a rubricforge build" in err and "\n" not in err.strip()


def test_publish_without_a_token_says_how_to_get_one(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))  # no stored login either
    with pytest.raises(PublishError, match="HF_TOKEN"):
        publish(fake_build(tmp_path / "out"), "me/x")

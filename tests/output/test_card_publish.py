"""The card's license logic, and publishing: dry-run operations, errors, and no token in sight."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from pipeline.cli import main
from pipeline.output.card import license_of, size_category, usage_lines
from pipeline.output.publish import MAX_FILES_PER_COMMIT, PublishError, local_files, plan_commits, publish

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
    assert "commit to v1" in lines[2] and "upload 4 files" in lines[2] and "delete" in lines[-1]
    added = [ln.split()[1] for ln in lines if ln.startswith("  add ")]
    assert added == ["sft/train-00000-of-00002.parquet", "sft/train-00001-of-00002.parquet",
                     "manifest.json", "README.md"]
    assert TOKEN not in out.out + out.err


def test_commits_stay_under_the_limit_with_data_first_deletions_then_the_card(tmp_path):
    build = fake_build(tmp_path / "out", n_shards=MAX_FILES_PER_COMMIT + 5)
    remote = [".gitattributes", "rl/train-00000-of-00001.parquet", "README.md"]
    commits = plan_commits(build, remote)
    assert [len(c.add) + len(c.delete) for c in commits] == [MAX_FILES_PER_COMMIT, 8]
    assert commits[-1].add[-2:] == ["manifest.json", "README.md"]
    assert commits[-1].delete == ["rl/train-00000-of-00001.parquet"]  # never .gitattributes
    assert commits[0].message.endswith("(1/2)")


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


# -- against a loopback fake of the Hub API, with the real client, as a user runs it --------


def publish_cli(build, hub, repo="me/judge-data"):
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "HF_TOKEN")}
    env.update(HF_ENDPOINT=hub.endpoint, HF_TOKEN=TOKEN, HF_HUB_DISABLE_XET="1",
               HF_HOME=str(build.parent / "hf-home"))
    done = subprocess.run([sys.executable, "-m", "pipeline.cli", "publish", str(build),
                           "--repo", repo], env=env, capture_output=True, text=True, timeout=300)
    assert TOKEN not in done.stdout + done.stderr
    return done


def on_disk(build):
    return {f: (build / f).read_bytes() for f in local_files(build)}


def test_publish_uploads_then_an_unchanged_build_makes_no_commit_and_a_change_only_itself(
        tmp_path):
    from fake_hub import FakeHub

    build = fake_build(tmp_path / "out")
    with FakeHub() as hub:
        done = publish_cli(build, hub)
        assert done.returncode == 0, done.stderr[-2000:]
        files = hub.files("me/judge-data")
        assert files.pop(".gitattributes").startswith(b"*.parquet filter=lfs")
        assert files == on_disk(build)
        commits = len(hub.repos["me/judge-data"].commits)

        again = publish_cli(build, hub)
        assert again.returncode == 0 and "already up to date" in again.stdout
        assert len(hub.repos["me/judge-data"].commits) == commits, "an empty commit was made"

        (build / "sft" / "train-00001-of-00002.parquet").write_bytes(b"changed")
        uploads = sum(hub.lfs_uploads.values())
        changed = publish_cli(build, hub)
        assert changed.returncode == 0, changed.stderr[-2000:]
        assert hub.repos["me/judge-data"].commits[-1]["operations"] == 1
        assert sum(hub.lfs_uploads.values()) == uploads + 1
        assert hub.files("me/judge-data")["sft/train-00001-of-00002.parquet"] == b"changed"


def test_stale_parts_are_deleted_above_the_file_limit_and_gitattributes_is_kept(tmp_path):
    from fake_hub import FakeHub

    build = fake_build(tmp_path / "out", n_shards=MAX_FILES_PER_COMMIT + 20)
    (build / "rl").mkdir()
    for i in range(3):
        (build / "rl" / f"train-{i:05d}-of-00003.parquet").write_bytes(b"rl" * (i + 1))
    with FakeHub() as hub:
        assert publish_cli(build, hub).returncode == 0
        assert sum(f.startswith("rl/") for f in hub.files("me/judge-data")) == 3
        shutil.rmtree(build / "rl")  # the new build has no rl part
        done = publish_cli(build, hub)
        assert done.returncode == 0, done.stderr[-2000:]
        files = hub.files("me/judge-data")
        assert not any(f.startswith("rl/") for f in files)
        assert ".gitattributes" in files and set(files) - {".gitattributes"} == set(on_disk(build))
        assert all(c["operations"] <= MAX_FILES_PER_COMMIT for c in hub.repos["me/judge-data"].commits)


def test_an_interrupted_publish_is_resumed_without_sending_anything_twice(tmp_path):
    from fake_hub import FakeHub

    build = fake_build(tmp_path / "out", n_shards=MAX_FILES_PER_COMMIT + 20)
    with FakeHub() as hub:
        hub.refuse_commits = 1  # the first commit fails after its files were uploaded
        failed = publish_cli(build, hub)
        assert failed.returncode == 1
        assert "run the same command again" in failed.stderr and "Traceback" not in failed.stderr
        assert hub.lfs_uploads, "the first commit's files were uploaded before it failed"
        done = publish_cli(build, hub)
        assert done.returncode == 0, done.stderr[-2000:]
        assert set(hub.lfs_uploads.values()) == {1}, "a file was uploaded twice"
        files = hub.files("me/judge-data")
        assert set(files) - {".gitattributes"} == set(on_disk(build))

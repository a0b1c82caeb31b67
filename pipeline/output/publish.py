"""Publish a build directory to the Hugging Face Hub with `huggingface_hub`.

Commits are built from explicit operations (`create_commit`): every file of the build is added
(data first, the card last), and every file on the Hub that the build no longer has is deleted,
whichever part it was in, `.gitattributes` excepted; at most `MAX_FILES_PER_COMMIT` operations
per commit. The Hub client drops additions whose content is already there and makes no empty
commit, so publishing an unchanged build changes nothing, and a publish that was interrupted
sends, when run again, only what did not arrive (LFS objects already uploaded are not sent
twice). The token comes from HF_TOKEN or the Hugging Face login and is never printed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pipeline.engine.config import RunError
from pipeline.output.shards import sha256_file

REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
# The Hub asks for fewer than 100 files per commit.
MAX_FILES_PER_COMMIT = 99
# Written by the Hub when it creates a repo (which files go to LFS): never deleted.
KEEP = (".gitattributes",)
# Written last, so the card never points at data that is not there yet.
LAST = ("manifest.json", "README.md")


class PublishError(RunError):
    pass


@dataclass(frozen=True)
class Commit:
    """One commit: the build's files it adds and the remote files it deletes."""

    message: str
    add: list[str]
    delete: list[str]


def local_files(directory: Path) -> list[str]:
    return sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*")
                  if p.is_file() and not any(part.startswith(".") for part in p.parts))


def plan_commits(directory: Path, remote: list[str] | None = None) -> list[Commit]:
    """The commits that publish `directory` over a repo holding `remote` (None: unknown, as
    in a dry run): data first, then the deletions, the manifest and card last."""
    if not (directory / "README.md").exists() or not (directory / "manifest.json").exists():
        raise PublishError(f"{directory} is not a rubricforge build (no README.md and "
                           "manifest.json): run `rubricforge build` first")
    manifest = json.loads((directory / "manifest.json").read_text())
    title = f"rubricforge build {manifest['recipe']} (config {manifest['config_sha256'][:12]})"
    files = local_files(directory)
    ops = [("add", f) for f in files if f not in LAST]
    ops += [("delete", f) for f in sorted(set(remote or ()) - set(files) - set(KEEP))]
    ops += [("add", f) for f in LAST]
    chunks = [ops[i:i + MAX_FILES_PER_COMMIT] for i in range(0, len(ops), MAX_FILES_PER_COMMIT)]
    return [Commit(title if len(chunks) == 1 else f"{title} ({i}/{len(chunks)})",
                   [f for kind, f in chunk if kind == "add"],
                   [f for kind, f in chunk if kind == "delete"])
            for i, chunk in enumerate(chunks, 1)]


def describe(directory: Path, repo: str, private: bool, revision: str | None,
             commits: list[Commit]) -> list[str]:
    lines = [f"create dataset repo {repo} ({'private' if private else 'public'}) if missing"]
    if revision:
        lines.append(f"create branch {revision} if missing")
    for c in commits:
        lines.append(f"commit to {revision or 'main'}: {c.message!r}: upload {len(c.add)} files")
        for f in c.add:
            path = directory / f
            digest = sha256_file(path)[:12]
            lines.append(f"  add {f} ({path.stat().st_size} bytes, sha256 {digest}…)")
    lines.append("then delete the files on the Hub that this build does not have "
                 "(.gitattributes is kept); files already on the Hub with the same content are "
                 "skipped, and an unchanged build makes no commit")
    return lines


def publish(directory: Path, repo: str, private: bool = False, revision: str | None = None,
            dry_run: bool = False, say: Callable[[str], None] = print) -> None:
    if not REPO_ID.match(repo):
        raise PublishError(f"--repo {repo!r} is not a Hub id of the form org/name")
    commits = plan_commits(directory)
    if dry_run:
        for line in describe(directory, repo, private, revision, commits):
            say(line)
        return
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi, get_token
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    token = get_token()
    if not token:
        raise PublishError("no Hugging Face token: set HF_TOKEN or run `hf auth login`")
    api = HfApi(token=token)
    try:
        api.create_repo(repo, repo_type="dataset", private=private, exist_ok=True)
        if revision:
            api.create_branch(repo, branch=revision, repo_type="dataset", exist_ok=True)
        before = api.repo_info(repo, repo_type="dataset", revision=revision).sha
        remote = api.list_repo_files(repo, repo_type="dataset", revision=revision)
        for c in plan_commits(directory, remote):
            operations = [CommitOperationAdd(f, str(directory / f)) for f in c.add]
            operations += [CommitOperationDelete(f) for f in c.delete]
            api.create_commit(repo, operations, commit_message=c.message, repo_type="dataset",
                              revision=revision)
        after = api.repo_info(repo, repo_type="dataset", revision=revision).sha
    except OfflineModeIsEnabled:
        raise PublishError("HF_HUB_OFFLINE=1 is set: unset it to publish") from None
    except ValueError as exc:  # the Hub's check of the card's metadata
        detail = " ".join(str(exc).split())[:300]
        raise PublishError(f"the Hub refused {directory / 'README.md'}: {detail}") from None
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "?"
        raise PublishError(f"the Hub refused the upload to {repo} (HTTP {status}); check that "
                           "your token may write there, then run the same command again "
                           "(uploaded files are not sent twice)") from None
    if before == after:
        say(f"{repo}: already up to date, nothing committed")
    else:
        say(f"published to {api.endpoint}/datasets/{repo} (commit {after[:12]})")

"""What a build read, so that a dataset can be traced to its inputs: for the Hub, the id, the
commit the revision resolved to, the config, folder and split, and the files; for local files,
the paths as given, their sizes and sha256."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

# The key of a source's raw table's schema metadata that holds what was read (JSON).
READ_METADATA = "rubricforge.read"
# How `datasets` names a Hub file it resolved: hf://datasets/<repo>@<commit>/<path in the repo>
_HUB_FILE = re.compile(r"^hf://datasets/(?P<repo>.+?)@(?P<commit>[^/]+)/(?P<path>.+)$")


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def local_file(path: str, shown: str | None = None) -> dict[str, Any]:
    """A file's record; `shown` is its name in the record when the path is this machine's
    business (a sample shipped in the package)."""
    return {"path": shown or path, "bytes": Path(path).stat().st_size, "sha256": sha256_of(path)}


def sample_read(sample: Path) -> dict[str, Any]:
    """The schema-exact sample a source ships, named by its file (not this machine's path)."""
    return {"kind": "files", "sample": True, "files": [local_file(str(sample), sample.name)]}


def files_read(files: list[str], given: str | None = None) -> dict[str, Any]:
    """Local files: `given` is the setting as the user wrote it (a glob, say)."""
    return {"kind": "files", **({"data_files": given} if given else {}),
            "files": [local_file(f) for f in files]}


def resolved_files(data_files: Any, split: str) -> list[str]:
    """The files `datasets` resolved for `split` (its builder's DataFilesDict), as strings."""
    if not data_files:
        return []
    chosen = data_files.get(split) if hasattr(data_files, "get") else None
    return [str(f) for f in (chosen if chosen is not None else data_files)]


def hub_read(cfg: Any, data_dir: str | None, files: list[str]) -> dict[str, Any]:
    """A Hub dataset (or a local folder laid out like one, read the same way): the commit is
    the one every resolved file came from; a local folder's files get sizes and checksums."""
    matches = [(f, _HUB_FILE.match(f)) for f in files]
    hub = [m for _, m in matches if m]
    commits = sorted({m["commit"] for m in hub})
    record = {"kind": "hub", "hub_id": cfg.hub_id, "revision": cfg.revision,
              "commit": commits[0] if len(commits) == 1 else (commits or None),
              "config": cfg.subset, "data_dir": data_dir, "split": cfg.split}
    local = [f for f, m in matches if not m and "://" not in f]
    record["files"] = ([local_file(f) for f in local] if local
                       else [m["path"] for m in hub] or files)
    return record

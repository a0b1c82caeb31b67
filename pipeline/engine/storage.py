"""Where a build reads and writes: a local path or any fsspec URL (`s3://`, `gs://`, ...).

On a cluster every node must reach the same teacher cache and output directory, so both are
named by URL and opened through fsspec. The one promise kept everywhere: a file is visible
under its final name only once it is complete. Locally that is a temporary file, fsync and
rename; on an object store a single PUT is all-or-nothing already.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem


def is_remote(url: str) -> bool:
    return "://" in url and not url.startswith("file://")


def resolve(url: str) -> str:
    """A local path made absolute (with ~ and $VARS expanded); a URL without a trailing slash."""
    if is_remote(url):
        return url.rstrip("/")
    return str(Path(os.path.expandvars(os.path.expanduser(url.removeprefix("file://")))).resolve())


def fs_of(url: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """The filesystem and the path inside it; credentials and endpoints come from the
    environment (e.g. AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID for S3)."""
    return fsspec.core.url_to_fs(url)


def join(url: str, *parts: str) -> str:
    return "/".join([url.rstrip("/"), *parts])


def parent_and_name(url: str) -> tuple[str, str]:
    head, _, name = url.rstrip("/").rpartition("/")
    return head, name


def _file_mode() -> int:
    """What `open()` would give a new file under the process's umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


FILE_MODE = _file_mode()


def write_bytes(url: str, data: bytes) -> None:
    """Write a whole file atomically: readers see the old file, or none, or all of the new."""
    write_files([(url, data)])


def write_files(files: list[tuple[str, bytes]]) -> None:
    """Write whole files atomically (as `write_bytes`), and return once all are on disk.

    Several local files are written and renamed, then their file system is synced once for all
    of them where the system can (Linux `syncfs`): the teacher cache writes a batch of small
    files at a time, and a sync per file was most of the CPU an answer cost
    (bench/client_bench.py). A single file is synced alone: `syncfs` also flushes what other
    programs wrote to that file system, which is worth it only for many files at once."""
    local = []
    for url, data in files:
        fs, path = fs_of(url)
        if isinstance(fs, LocalFileSystem):
            local.append((path, data))
        else:
            fs.pipe_file(path, data)  # one PUT: an object store never shows part of it
    if not local:
        return
    sync_once = _SYNCFS is not None and len(local) > 1
    for path, data in local:
        _write_local(path, data, fsync=not sync_once)
    if sync_once:
        fd = os.open(os.path.dirname(local[0][0]), os.O_RDONLY)
        try:
            if _SYNCFS(fd) != 0:
                raise OSError(ctypes.get_errno(), f"syncfs failed for {local[0][0]}")
        finally:
            os.close(fd)


def _write_local(path: str, data: bytes, fsync: bool) -> None:
    folder, name = os.path.split(path)
    if folder not in _FOLDERS:
        os.makedirs(folder, exist_ok=True)
        _FOLDERS.add(folder)
    # Plain os calls, not mkstemp and file objects (half the CPU of a small file): a random
    # name (several hosts may share the folder), created exclusively, with the mode `open()`
    # gives under the user's umask.
    tmp = os.path.join(folder, f".tmp-{name}-{os.urandom(6).hex()}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileNotFoundError:  # the folder was removed since it was made
        _FOLDERS.discard(folder)
        os.makedirs(folder, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _syncfs() -> Any:
    """Linux's syncfs(2) (all of one file system's pending writes, renames included), or None."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.syncfs if hasattr(libc, "syncfs") else None
    except OSError:
        return None


_SYNCFS = _syncfs()
# Folders known to exist: not asked again for every file written into them.
_FOLDERS: set[str] = set()


def read_bytes(url: str) -> bytes:
    if not is_remote(url):
        return Path(url.removeprefix("file://")).read_bytes()
    fs, path = fs_of(url)
    return fs.cat_file(path)


def rename(src: str, dst: str) -> None:
    """Give a complete file its final name (on object stores: a server-side copy, then delete)."""
    fs, src_path = fs_of(src)
    _, dst_path = fs_of(dst)
    if isinstance(fs, LocalFileSystem):
        os.replace(src_path, dst_path)
    else:
        fs.mv(src_path, dst_path)


def modified(info: dict[str, Any]) -> float:
    """Last-modified time (epoch seconds) from an fsspec `info` record of any backend."""
    for key in ("mtime", "LastModified", "last_modified", "updated"):
        value = info.get(key)
        if isinstance(value, datetime):
            return value.timestamp()
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    return 0.0


def files_under(url: str) -> dict[str, dict[str, Any]]:
    """Every file below `url`, keyed by its path relative to it, with fsspec's info."""
    fs, root = fs_of(url)
    fs.invalidate_cache(root)  # other nodes wrote here: never trust a listing kept from before
    if not fs.exists(root):
        return {}
    found = fs.find(root, detail=True)
    return {path[len(root.rstrip("/")) + 1:]: info for path, info in found.items()}


def staging_for(final: str) -> str:
    """A sibling of the output that no reader looks at, unique to this build process."""
    head, name = parent_and_name(final)
    return join(head, f".{name}.tmp-{os.getpid()}")


def remove_tree(url: str) -> None:
    fs, path = fs_of(url)
    if isinstance(fs, LocalFileSystem):
        shutil.rmtree(path, ignore_errors=True)
    elif fs.exists(path):
        fs.rm(path, recursive=True)


def remove_file(url: str) -> None:
    """Delete one file if it is there."""
    fs, path = fs_of(url)
    if fs.exists(path):
        fs.rm_file(path)


def upload_dir(local: Path, url: str) -> None:
    """Copy a local directory's files under `url` (each file atomically)."""
    for path in sorted(p for p in local.rglob("*") if p.is_file()):
        write_bytes(join(url, path.relative_to(local).as_posix()), path.read_bytes())


def commit(staging: str, final: str, last: tuple[str, ...] = ()) -> None:
    """Put a finished build where readers look. Locally the directory is swapped in with one
    rename. An object store has no directories to rename: each object is copied to its final
    name (shards first, the files in `last` after them), then objects of an older build that
    this one does not have are deleted."""
    fs, staging_path = fs_of(staging)
    _, final_path = fs_of(final)
    if isinstance(fs, LocalFileSystem):
        head, name = parent_and_name(final_path)
        old = join(head, f".{name}.old-{os.getpid()}")
        if os.path.exists(final_path):
            os.rename(final_path, old)
        os.rename(staging_path, final_path)
        shutil.rmtree(old, ignore_errors=True)
        return
    new = files_under(staging)
    for rel in sorted(new, key=lambda r: (r in last, r)):
        fs.copy(join(staging_path, rel), join(final_path, rel))
    stale = [join(final_path, rel) for rel in files_under(final) if rel not in new]
    if stale:
        fs.rm(stale)
    remove_tree(staging)

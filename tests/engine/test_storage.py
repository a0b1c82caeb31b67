"""Cache and output on shared storage: a local directory and S3 (moto on loopback) behave the
same, and nothing is visible under its final name before it is complete."""

from __future__ import annotations

import json
import time
import uuid

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.engine import storage
from pipeline.output.shards import ShardWriter
from pipeline.teachers import cache
from pipeline.teachers.cache import ResponseCache

RECORD = {"content": "<answer>[[B]]</answer>", "finish_reason": "stop", "prompt_tokens": 7,
          "completion_tokens": 3}


@pytest.fixture(params=["local", "s3"])
def root(request, tmp_path):
    """A fresh place to write: a local directory, or a prefix in the test bucket."""
    if request.param == "local":
        return str(tmp_path / "store")
    request.getfixturevalue("s3")
    return f"s3://rubricforge-test/{uuid.uuid4().hex}"


def test_cache_round_trip_stats_export_and_prune(root, tmp_path):
    store = ResponseCache(root)
    keys = [f"{i:02x}" + "cd" * 31 for i in range(3)]
    assert store.get(keys[0]) is None and keys[0] not in store
    for k in keys:
        store.put(k, RECORD)
    assert store.get(keys[1]) == RECORD and keys[1] in store
    st = cache.stats(root)
    assert (st["responses"], st["prompt_tokens"], st["leftover_temp_files"]) == (3, 21, 0)
    out = tmp_path / "export.jsonl"
    assert cache.export(root, out) == 3
    assert [json.loads(x)["key"] for x in out.read_text().splitlines()] == sorted(keys)
    assert cache.prune(root, older_than_s=3600) == (0, 0)
    n, freed = cache.prune(root, older_than_s=-60)  # everything counts as old
    assert n == 3 and freed == st["bytes"] and cache.stats(root)["responses"] == 0


def test_an_unreadable_entry_is_asked_again(root):
    store = ResponseCache(root)
    key = "ee" * 32
    storage.write_bytes(store._path(key), b'{"content": "half')
    assert store.get(key) is None
    store.put(key, RECORD)
    assert store.get(key) == RECORD


def test_shards_on_any_storage_are_named_only_when_complete(root):
    table = pa.table({"text": [f"row {i} " * 40 for i in range(600)]})
    writer = ShardWriter(storage.join(root, "sft"), table.schema, max_bytes=50_000)
    for i in range(0, 600, 100):
        writer.add(table.slice(i, 100))
    names = {rel for rel in storage.files_under(root)}
    assert names and all(n.endswith(".parquet.partial") for n in names), "no final name yet"
    shards = writer.close()
    assert len(shards) > 1
    assert sorted(storage.files_under(root)) == [f"sft/{s['name']}" for s in shards]
    fs, base = storage.fs_of(root)
    rows = sum(pq.read_table(fs.open(f"{base}/sft/{s['name']}", "rb")).num_rows for s in shards)
    assert rows == 600


def test_commit_replaces_the_old_build_and_drops_its_stale_files(root):
    final = storage.join(root, "out")
    for rel in ("sft/train-00000-of-00002.parquet", "sft/train-00001-of-00002.parquet",
                "manifest.json"):
        storage.write_bytes(storage.join(final, rel), b"old")
    staging = storage.staging_for(final)
    storage.write_bytes(storage.join(staging, "sft/train-00000-of-00001.parquet"), b"new")
    storage.write_bytes(storage.join(staging, "manifest.json"), b"{}")
    storage.commit(staging, final, last=("manifest.json",))
    assert storage.files_under(final).keys() == {"sft/train-00000-of-00001.parquet",
                                                 "manifest.json"}
    assert storage.read_bytes(storage.join(final, "manifest.json")) == b"{}"
    assert storage.files_under(staging) == {}


def test_modified_times_of_every_backend():
    now = time.time()
    assert storage.modified({"mtime": now}) == now
    from datetime import UTC, datetime

    assert storage.modified({"LastModified": datetime.fromtimestamp(now, UTC)}) == pytest.approx(now)
    assert storage.modified({"updated": "2026-01-02T03:04:05Z"}) > 0


def test_written_files_get_the_users_normal_permissions(tmp_path):
    """Shards, manifest, card and cache entries are written through a private temp file; the
    result must be readable as the user's umask says (0644 under 022, 0640 under 027)."""
    import stat
    import subprocess
    import sys

    from pipeline.engine import storage

    for mask in (0o022, 0o027):
        target = tmp_path / f"{mask:o}" / "train-00000-of-00001.parquet"
        code = (f"import os; os.umask({mask}); from pipeline.engine import storage; "
                f"storage.write_bytes({str(target)!r}, b'rows')")
        subprocess.run([sys.executable, "-c", code], check=True)
        assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~mask
    here = tmp_path / "here.json"
    storage.write_bytes(str(here), b"{}")
    assert stat.S_IMODE(here.stat().st_mode) == storage.FILE_MODE


def test_many_answers_are_written_whole_with_one_sync(root, monkeypatch):
    """A batch of cache answers: every file complete under its final name, no temp file left,
    and (locally, where the system has syncfs) one sync for the batch instead of one per file."""
    syncs, fsyncs = [], []
    if storage._SYNCFS is not None:
        real = storage._SYNCFS
        monkeypatch.setattr(storage, "_SYNCFS", lambda fd: syncs.append(fd) or real(fd))
    real_fsync = storage.os.fsync
    monkeypatch.setattr(storage.os, "fsync", lambda fd: fsyncs.append(fd) or real_fsync(fd))
    store = ResponseCache(root)
    answers = [(f"{i:02x}" + "ab" * 31, RECORD | {"content": f"answer {i}"}) for i in range(20)]
    store.put_many(answers)
    for key, record in answers:
        assert store.get(key) == record
    assert cache.stats(root)["leftover_temp_files"] == 0
    if root.startswith("s3://"):
        return
    if storage._SYNCFS is not None:
        assert len(syncs) == 1 and not fsyncs
    else:
        assert len(fsyncs) == 20
    store.put(answers[0][0], RECORD)  # one file: synced alone
    assert len(fsyncs) == (1 if storage._SYNCFS is not None else 21)


def test_the_writer_batches_concurrent_puts_and_reports_a_failure_to_each(tmp_path):
    import asyncio

    from pipeline.teachers.cache import BatchedWriter

    store = ResponseCache(str(tmp_path / "c"))
    calls = []
    real = store.put_many
    store.put_many = lambda answers: calls.append(len(answers)) or real(answers)

    async def many(writer, n):
        await asyncio.gather(*(writer.put(f"{i:064x}", RECORD) for i in range(n)))

    asyncio.run(many(BatchedWriter(store), 50))
    assert sum(calls) == 50 and len(calls) < 5, calls
    assert all(store.get(f"{i:064x}") == RECORD for i in range(50))

    def full(answers):
        raise OSError(28, "No space left on device")

    store.put_many = full

    async def failing():
        writer = BatchedWriter(store)
        return await asyncio.gather(*(writer.put(f"{i:064x}", RECORD) for i in range(3)),
                                    return_exceptions=True)

    assert [type(e) for e in asyncio.run(failing())] == [OSError] * 3

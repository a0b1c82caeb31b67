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

"""Parquet shards with Hub names (train-00000-of-00003.parquet), bounded in size, written
deterministically, and only visible under their final names once complete."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.engine import storage

ROW_GROUP_ROWS = 1024


def parquet_bytes(table: pa.Table) -> bytes:
    # Fixed settings, no timestamps: the same rows always give the same bytes.
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd", row_group_size=ROW_GROUP_ROWS,
                   write_statistics=True)
    return sink.getvalue().to_pybytes()


class ShardWriter:
    """Collects rows of one part in a directory (a path or fsspec URL); cuts a shard whenever
    the pending rows reach the bound."""

    def __init__(self, directory: str | Path, schema: pa.Schema, max_bytes: int) -> None:
        self.dir = str(directory)
        self.schema = schema
        self.max_bytes = max_bytes
        self.pending: list[pa.Table] = []
        self.pending_bytes = 0
        self.written: list[tuple[str, str, int]] = []  # (partial url, sha256, bytes)
        self.rows = 0

    def add(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        self.pending.append(table)
        self.pending_bytes += table.nbytes
        self.rows += table.num_rows
        if self.pending_bytes >= self.max_bytes:
            self._flush()

    def _flush(self) -> None:
        data = parquet_bytes(pa.concat_tables(self.pending))
        url = storage.join(self.dir, f"part-{len(self.written):05d}.parquet.partial")
        storage.write_bytes(url, data)
        self.written.append((url, hashlib.sha256(data).hexdigest(), len(data)))
        self.pending, self.pending_bytes = [], 0

    def close(self) -> list[dict[str, Any]]:
        """Write what is left, then give every shard its final name; returns name, sha256 and
        size of each. An empty part writes no file: `datasets` cannot read a Parquet file
        without rows."""
        if self.pending:
            self._flush()
        n = len(self.written)
        final = []
        for i, (url, digest, size) in enumerate(self.written):
            name = f"train-{i:05d}-of-{n:05d}.parquet"
            storage.rename(url, storage.join(self.dir, name))
            final.append({"name": name, "sha256": digest, "bytes": size})
        return final


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()

"""Values a stage computed before, by a digest of what they were computed from, on this
machine's disk: a rebuild reads them instead of computing them again.

A memo is a folder of Arrow segment files of (key, value). The first lookup in a process maps
them all and sorts their keys once (16 bytes a key, as two 64-bit halves); each batch with keys
not seen before adds one segment for them. Keyed by content, not by block: which rows share a
block is not the same from one run to the next. Cheap to lose: a missing or unreadable segment
is computed again. The folder's name must say everything else the values depend on
(parameters, the version of the method).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from pipeline.engine import storage
from pipeline.engine.config import expand


def key_of(data: bytes) -> tuple[int, int]:
    """A memo key: 128 bits of digest as two 64-bit halves (collisions are not a concern)."""
    d = hashlib.blake2b(data, digest_size=16).digest()
    return int.from_bytes(d[:8], "little"), int.from_bytes(d[8:], "little")


def digest(text: str) -> tuple[int, int]:
    """The key of a text."""
    return key_of(text.encode("utf-8"))


class Memo:
    """(key, value) pairs in segment files under `directory`; values of one Arrow type."""

    def __init__(self, directory: str | Path, value_type: pa.DataType) -> None:
        self.dir = expand(str(directory))
        self.schema = pa.schema([("hi", pa.uint64()), ("lo", pa.uint64()), ("value", value_type)])
        self._hi = self._lo = np.empty(0, np.uint64)
        self._values: pa.ChunkedArray | None = None
        self._new: dict[tuple[int, int], Any] = {}  # computed by this process since it loaded

    def _load(self) -> None:
        tables = []
        for path in sorted(self.dir.glob("*.arrow")):
            try:
                table = pa.ipc.open_file(pa.memory_map(str(path))).read_all()
            except (OSError, pa.ArrowInvalid):
                continue
            if table.schema.equals(self.schema):
                tables.append(table)
        known = pa.concat_tables(tables) if tables else self.schema.empty_table()
        hi, lo = known.column("hi").to_numpy(), known.column("lo").to_numpy()
        order = np.lexsort((lo, hi))
        self._hi, self._lo = hi[order], lo[order]
        self._values = known.column("value").take(pa.array(order))

    def _find(self, hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
        """Each key's place among the loaded ones, -1 where it is not there."""
        found = np.full(len(hi), -1, np.int64)
        if not len(self._hi):
            return found
        at = np.searchsorted(self._hi, hi)
        for step in range(4):  # keys sharing a high half sit together (one in 2**64 does)
            pos = np.minimum(at + step, len(self._hi) - 1)
            same = (found < 0) & (self._hi[pos] == hi) & (self._lo[pos] == lo)
            found[same] = pos[same]
        return found

    def values(self, keys: list[tuple[int, int]],
               compute: Callable[[list[int]], list[Any]]) -> pa.Array:
        """The value of each key; `compute(positions)` gives those of keys not known yet, in
        the order of `positions`."""
        if self._values is None:
            self._load()
        hi = np.fromiter((k[0] for k in keys), np.uint64, len(keys))
        lo = np.fromiter((k[1] for k in keys), np.uint64, len(keys))
        found = self._find(hi, lo)
        first: dict[tuple[int, int], int] = {}  # each key not on disk yet, once
        for i in np.flatnonzero(found < 0).tolist():
            if keys[i] not in self._new:
                first.setdefault(keys[i], i)
        if first:
            new = compute(list(first.values()))
            self._write(list(first), new)
            self._new.update(zip(first, new, strict=True))
        loaded = (self._values.take(pa.array(np.maximum(found, 0))).to_pylist()
                  if len(self._hi) else [None] * len(keys))
        out = [self._new[k] if f < 0 else v for k, f, v in zip(keys, found.tolist(), loaded,
                                                              strict=True)]
        return pa.array(out, self.schema.field("value").type)

    def _write(self, keys: list[tuple[int, int]], values: list[Any]) -> None:
        table = pa.table({"hi": pa.array([k[0] for k in keys], pa.uint64()),
                          "lo": pa.array([k[1] for k in keys], pa.uint64()),
                          "value": pa.array(values, self.schema.field("value").type)},
                         schema=self.schema)
        sink = pa.BufferOutputStream()
        with pa.ipc.new_file(sink, self.schema) as writer:
            writer.write_table(table)
        name = hashlib.sha256(np.array(keys, np.uint64).tobytes()).hexdigest()[:32]
        storage.write_bytes(str(self.dir / f"{name}.arrow"), sink.getvalue().to_pybytes())


_OPEN: dict[tuple[str, str], Memo] = {}


def memo_at(directory: str | Path, value_type: pa.DataType) -> Memo:
    """This process's memo of a folder: its segments are read once per worker, not per batch."""
    key = (str(directory), str(value_type))
    if key not in _OPEN:
        _OPEN[key] = Memo(directory, value_type)
    return _OPEN[key]

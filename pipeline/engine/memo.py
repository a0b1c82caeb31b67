"""Values a stage computed before, by a digest of what they were computed from, on this
machine's disk: a rebuild reads them instead of computing them again.

A memo is a folder of Arrow segment files of (key, value). The first lookup in a process maps
them all (a few bytes a row); each batch with keys not seen before adds one segment for them.
Keyed by content, not by block: which rows share a block is not the same from one run to the
next. Cheap to lose: a missing or unreadable segment is computed again. The folder's name must
say everything else the values depend on (parameters, the version of the method).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.engine import storage
from pipeline.engine.config import expand


def digest(text: str) -> str:
    """The key of a text (128 bits: collisions are not a concern at any dataset size)."""
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


class Memo:
    """(key, value) pairs in segment files under `directory`; values of one Arrow type."""

    def __init__(self, directory: str | Path, value_type: pa.DataType) -> None:
        self.dir = expand(str(directory))
        self.schema = pa.schema([("key", pa.string()), ("value", value_type)])
        self._known: pa.Table | None = None

    def _load(self) -> pa.Table:
        tables = []
        for path in sorted(self.dir.glob("*.arrow")):
            try:
                table = pa.ipc.open_file(pa.memory_map(str(path))).read_all()
            except (OSError, pa.ArrowInvalid):
                continue
            if table.schema.equals(self.schema):
                tables.append(table)
        return pa.concat_tables(tables) if tables else self.schema.empty_table()

    def values(self, keys: list[str], compute: Callable[[list[int]], pa.Array]) -> pa.Array:
        """The value of each key; `compute(positions)` gives those of keys not known yet, in
        the order of `positions`."""
        if self._known is None:
            self._known = self._load()
        wanted = pa.array(keys, pa.string())
        found = pc.index_in(wanted, value_set=self._known.column("key"))
        missing = np.flatnonzero(pc.is_null(found).to_numpy(zero_copy_only=False))
        if len(missing):
            first = dict.fromkeys(keys[i] for i in missing)  # each new key once
            at = {k: i for i, k in reversed(list(enumerate(keys)))}
            positions = [at[k] for k in first]
            new = pa.table({"key": pa.array(list(first), pa.string()),
                            "value": pa.array(compute(positions), self.schema.field("value").type)},
                           schema=self.schema)
            self._write(new)
            self._known = pa.concat_tables([self._known, new])
            found = pc.index_in(wanted, value_set=self._known.column("key"))
        return self._known.column("value").take(found).combine_chunks()

    def _write(self, table: pa.Table) -> None:
        sink = pa.BufferOutputStream()
        with pa.ipc.new_file(sink, self.schema) as writer:
            writer.write_table(table)
        name = hashlib.sha256("".join(table.column("key").to_pylist()).encode()).hexdigest()[:32]
        storage.write_bytes(str(self.dir / f"{name}.arrow"), sink.getvalue().to_pybytes())


_OPEN: dict[tuple[str, str], Memo] = {}


def memo_at(directory: str | Path, value_type: pa.DataType) -> Memo:
    """This process's memo of a folder: its segments are read once per worker, not per batch."""
    key = (str(directory), str(value_type))
    if key not in _OPEN:
        _OPEN[key] = Memo(directory, value_type)
    return _OPEN[key]

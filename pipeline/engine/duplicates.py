"""What both dedup stages share: the rows a duplicate group does not keep are marked, by id,
in parallel batches, after the groups were resolved on the driver from small per-row keys."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from pipeline.engine.schema import DEDUPLICATED, ROW_KEY, put_column
from pipeline.rules.keys import row_name

# row id -> (pair_id of the row kept, reason, detail)
Duplicates = dict[str, tuple[str, str, str]]


def _ids(batch: pa.Table) -> list[str]:
    """The row id of every row, from the key columns alone (the texts are not read)."""
    cols = [batch.column(c).to_pylist() for c in ROW_KEY]
    return [row_name(*key) for key in zip(*cols, strict=True)]


def mark_duplicates(batch: pa.Table, dups: Any, regroup: Any, stage: str) -> pa.Table:
    """Mark the rows in `dups` (by row id) and set each row's `prompt_group`: its group (its
    own pair_id if it has none yet), or what `regroup` maps that group to. Both come as object
    refs, so each task reads them from the object store instead of unpickling a copy."""
    import ray

    dups, regroup = ray.get(dups), ray.get(regroup)
    ids = _ids(batch)
    had = (batch.column("prompt_group").to_pylist() if "prompt_group" in batch.column_names
           else [None] * batch.num_rows)
    current = [g or p for g, p in zip(had, batch.column("pair_id").to_pylist(), strict=True)]
    batch = put_column(batch, "prompt_group", [regroup.get(g, g) for g in current])
    hits = [dups.get(i) for i in ids]
    if not any(hits):
        return batch
    # a hit is (pair_id kept, reason, detail)
    updates = {"outcome": lambda h: DEDUPLICATED, "reason": lambda h: h[1],
               "detail": lambda h: h[2], "decided_by": lambda h: stage, "dup_of": lambda h: h[0]}
    for name, value in updates.items():
        old = (batch.column(name).to_pylist() if name in batch.column_names
               else [None] * batch.num_rows)
        batch = put_column(batch, name, [o if h is None else value(h)
                                   for o, h in zip(old, hits, strict=True)])
    return batch

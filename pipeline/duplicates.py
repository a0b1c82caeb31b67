"""What both dedup stages share: the rows a duplicate group does not keep are marked, by id,
in parallel batches, after the groups were resolved on the driver from small per-row keys."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from pipeline.keys import row_id
from pipeline.schema import DEDUPLICATED
from pipeline.stage import decide, map_rows

# row id -> (pair_id of the row kept, reason, detail)
Duplicates = dict[str, tuple[str, str, str]]


def mark_duplicates(batch: pa.Table, dups: Duplicates, stage: str) -> pa.Table:
    def one(r: dict[str, Any]) -> dict[str, Any]:
        hit = dups.get(row_id(r))
        if hit is None:
            return {}
        kept, reason, detail = hit
        return decide(DEDUPLICATED, reason, stage, detail) | {"dup_of": kept}

    return map_rows(batch, one)

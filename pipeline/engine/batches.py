"""What the engine runs on Ray's workers: a stage applied to one batch, and the split of a batch
into rows in play and rows decided.

Kept apart from the engine, with light imports: Ray starts fresh worker processes for shuffles
and actor pools, and each one imports the module its function lives in (the engine's imports
took 3 s a process: the card's plots, the API client, vLLM's helpers).
"""

from __future__ import annotations

import json
import os
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.engine.schema import (
    ALIVE,
    FATE_COLUMNS,
    REJECTED,
    ROW_KEY,
    Columns,
    conform,
    put_column,
    schema_of,
)
from pipeline.engine.stage import Stage


class StageContractError(RuntimeError):
    pass


def in_play(stage: Stage, batch: pa.Table) -> pa.Array:
    """The rows a stage gets: live ones, plus those rejected by a stage it reopens."""
    mask = pc.equal(batch.column("outcome"), ALIVE)
    if stage.reopens:
        taken_back = pc.and_(pc.equal(batch.column("outcome"), REJECTED),
                             pc.is_in(batch.column("decided_by"), pa.array(stage.reopens)))
        mask = pc.or_(mask, pc.fill_null(taken_back, False))
    return mask


def split_by_play(stage: Stage, batch: pa.Table) -> tuple[pa.Table, pa.Table]:
    """The rows in play and the others."""
    mask = in_play(stage, batch)
    return batch.filter(mask), batch.filter(pc.invert(mask))


def check_output(stage: Stage, given: int, out: pa.Table) -> None:
    """A stage returns as many rows as it was given, with every output it declared."""
    if out.num_rows != given:
        raise StageContractError(f"stage '{stage.name}' returned {out.num_rows} rows for "
                                 f"{given}: stages mark rows, they never drop them")
    missing = [c for c in stage.outputs if c not in out.column_names] if given else []
    if missing:
        raise StageContractError(f"stage '{stage.name}' did not write its declared outputs {missing}")


def stage_view(stage: Stage, rows: pa.Table) -> pa.Table:
    """The columns of `rows` a stage is given: the row's identity and fate, and what it declared
    it reads or writes. The texts it does not read are never converted for it."""
    wanted = {"pair_id", *ROW_KEY, *FATE_COLUMNS, *stage.inputs, *stage.optional_inputs,
              *stage.outputs}
    return rows.select([c for c in rows.column_names if c in wanted])


def apply_to_batch(stage: Stage, columns: Columns, batch: pa.Table) -> pa.Table:
    """Give the stage the rows in play, with the columns it declared; pass the others by; check
    what comes back and write its declared outputs into the rows."""
    live, done = split_by_play(stage, batch)
    if live.num_rows:
        out = stage.process(stage_view(stage, live))
        check_output(stage, live.num_rows, out)
        for name in stage.outputs:
            live = put_column(live, name, out.column(name))
    return pa.concat_tables([conform(live, columns), conform(done, columns)])


class StageActor:
    """Holds one stage instance for stages that keep state (clients, engines) across batches."""

    def __init__(self, stage: Stage, columns: Columns) -> None:
        self.stage, self.columns = stage, columns

    def __call__(self, batch: pa.Table) -> pa.Table:
        return apply_to_batch(self.stage, self.columns, batch)


def decided_rows(stage: Stage, columns: Columns, batch: pa.Table
                 ) -> tuple[pa.Table, int, int]:
    """The rows not in play (typed as `columns`), with the numbers of rows in play and not."""
    if batch.num_rows == 0:  # an empty block may come without columns
        return schema_of(columns).empty_table(), 0, 0
    mask = in_play(stage, batch)
    n_live = pc.sum(mask).as_py() or 0
    return conform(batch.filter(pc.invert(mask)), columns), n_live, batch.num_rows - n_live


def ahead_in_background(stage: Stage, batch: pa.Table) -> int:
    """`ahead_on` in a process of its own (one per task) at the lowest CPU priority: the work
    uses the CPU a teacher's client leaves, never the client's own (at 78 requests/s on two
    cores, at equal priority, pass 1's utilization fell from 0.87 to 0.70)."""
    os.nice(19)
    return ahead_on(stage, batch)


def ahead_on(stage: Stage, batch: pa.Table) -> int:
    """A stage's `ahead` on a block's live rows; returns how many it was given."""
    if batch.num_rows == 0:
        return 0
    rows = batch.filter(pc.equal(batch.column("outcome"), ALIVE))
    if rows.num_rows:
        stage.ahead(stage_view(stage, rows))
    return rows.num_rows


def rows_in_play(stage: Stage, batch: pa.Table) -> pa.Table:
    return batch.filter(in_play(stage, batch))


def live_columns(stage: Stage, names: tuple[str, ...], batch: pa.Table) -> pa.Table:
    """The named columns of the rows in play: what a group stage reads, gathered cheaply."""
    return batch.filter(in_play(stage, batch)).select(list(names))


# Per worker process: the lookup of each updates table it was given (built once, reused by
# every batch the worker maps).
_LOOKUPS: dict[str, dict[tuple[str, int], int]] = {}


def apply_updates(stage: Stage, columns: Columns, updates: Any, batch: pa.Table
                  ) -> pa.Table:
    """Write a group stage's outputs, decided on the driver (`updates`: an object ref of the
    row keys and the outputs), into the batch's rows in play."""
    import ray

    table: pa.Table = ray.get(updates)
    lookup = _LOOKUPS.get(updates.hex())
    if lookup is None:
        _LOOKUPS.clear()
        keys = zip(*(table.column(k).to_pylist() for k in ROW_KEY), strict=True)
        lookup = _LOOKUPS[updates.hex()] = {key: i for i, key in enumerate(keys)}
    live, done = split_by_play(stage, batch)
    found = [lookup[key] for key in zip(*(live.column(k).to_pylist() for k in ROW_KEY), strict=True)]
    rows = table.take(pa.array(found, pa.int64()))
    for name in stage.outputs:
        live = put_column(live, name, rows.column(name))
    return pa.concat_tables([conform(live, columns), conform(done, columns)])


REQUEST_SCHEMA = pa.schema([("key", pa.string()), ("request", pa.string())])


def request_table(requests: dict[str, dict[str, Any]]) -> pa.Table:
    """Uncached requests as rows: the cache key and the request."""
    return pa.table({"key": list(requests),
                     "request": [json.dumps(r, ensure_ascii=False) for r in requests.values()]},
                    schema=REQUEST_SCHEMA)

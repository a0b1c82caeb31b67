"""Write the final rows as Parquet shards, one Ray task per output part.

The driver never holds the rows, and the rows are never sorted as a whole: one task per block
says which part each row goes to, with its row key (a few bytes a row); the driver sorts those
keys, and each part's task walks the blocks in its rows' order and writes the rows (so shard
bytes depend only on the rows, not on which blocks held them or which node wrote them), and
returns the counts for the manifest.
Rows arrive mostly in key order, so a few blocks at a time are open. A task that dies is
retried by Ray and rewrites the same files under the same names.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import ray

from pipeline.engine import storage
from pipeline.engine.schema import (
    ALIVE,
    DEDUPLICATED,
    KEPT,
    PARTS,
    QUARANTINED,
    REJECTED,
    ROW_KEY,
    SFT,
    Columns,
    conform,
    schema_of,
)
from pipeline.output.formats import RL_SCHEMA, SFT_SCHEMA, to_rl, to_sft
from pipeline.output.manifest import Tally
from pipeline.output.shards import ShardWriter

if TYPE_CHECKING:  # (ray.data brings pandas: a second for each worker process that writes)
    from ray.data import Dataset

    from pipeline.engine.stage import Stage

log = logging.getLogger("rubricforge")

BY_OUTCOME = {"rejected": REJECTED, "quarantine": QUARANTINED, "deduplicated": DEDUPLICATED}
OPEN_BLOCKS = 8


def part_mask(part: str, batch: pa.Table) -> pa.Array:
    """The rows of `batch` that go to `part`: every row goes to exactly one."""
    outcome = batch.column("outcome")
    if part in BY_OUTCOME:
        return pc.equal(outcome, BY_OUTCOME[part])
    to_sft_part = pc.fill_null(pc.equal(batch.column("split"), SFT), False)
    return pc.and_(pc.equal(outcome, ALIVE), to_sft_part if part == "sft" else pc.invert(to_sft_part))


@ray.remote(num_cpus=1)
def _keys(block: pa.Table, b: int) -> pa.Table:
    """Which part each row of block `b` goes to, with its row key and place (a few bytes a row)."""
    if block.num_rows == 0:  # an empty block may come without columns
        return pa.table({})
    part = pa.array(np.full(block.num_rows, -1, np.int8))
    for i, name in enumerate(PARTS):
        part = pc.if_else(part_mask(name, block), pa.scalar(i, pa.int8()), part)
    return (block.select(list(ROW_KEY)).append_column("_part", part)
            .append_column("_block", pa.array(np.full(block.num_rows, b, np.int64)))
            .append_column("_row", pa.array(np.arange(block.num_rows, dtype=np.int64))))


def part_orders(blocks: list[Any]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """For each part, the (block, row) of its rows in row-key order: one light read of every
    block for all parts."""
    keys = [t for t in ray.get([_keys.remote(ref, b) for b, ref in enumerate(blocks)])
            if t.num_rows]
    empty = np.empty(0, np.int64), np.empty(0, np.int64)
    if not keys:
        return dict.fromkeys(PARTS, empty)
    table = pa.concat_tables(keys)
    table = table.take(pc.sort_indices(table, [(k, "ascending") for k in ROW_KEY]))
    part = table.column("_part").to_numpy()
    block, row = table.column("_block").to_numpy(), table.column("_row").to_numpy()
    return {name: (block[part == i], row[part == i]) for i, name in enumerate(PARTS)}


def _sorted_batches(blocks: list[Any], order: tuple[np.ndarray, np.ndarray],
                    columns: Columns, batch_rows: int) -> Iterator[pa.Table]:
    """The rows at `order` ((block, row) arrays), `batch_rows` at a time."""
    block_of, row_of = order
    open_blocks: OrderedDict[int, pa.Table] = OrderedDict()

    def block(b: int) -> pa.Table:
        if b not in open_blocks:
            open_blocks[b] = conform(ray.get(blocks[b]), columns)
            if len(open_blocks) > OPEN_BLOCKS:
                open_blocks.popitem(last=False)
        open_blocks.move_to_end(b)
        return open_blocks[b]

    for start in range(0, len(block_of), batch_rows):
        bs, rs = block_of[start:start + batch_rows], row_of[start:start + batch_rows]
        pieces, places = [], []
        for b in dict.fromkeys(bs.tolist()):  # each block once, in order of first use
            at = np.flatnonzero(bs == b)
            pieces.append(block(b).take(pa.array(rs[at])))
            places.append(at)
        batch = pa.concat_tables(pieces)
        yield batch.take(pa.array(np.argsort(np.concatenate(places), kind="stable")))


def _write_part(blocks: list[Any], part: str, order: tuple[np.ndarray, np.ndarray],
                columns: pa.Schema, out: str, max_bytes: int, batch_rows: int,
                counting: list[Stage], run_only: tuple[str, ...]
                ) -> tuple[Tally, list[dict[str, Any]]]:
    inflight = pa.schema([f for f in schema_of(columns) if f.name not in run_only])
    schema = {"sft": SFT_SCHEMA, "rl": RL_SCHEMA}.get(part, inflight)
    writer = ShardWriter(storage.join(out, part), schema, max_bytes)
    tally = Tally()
    for batch in _sorted_batches(blocks, order, columns, batch_rows):
        rows = batch.to_pylist()
        if part not in BY_OUTCOME:
            for r in rows:  # a row no stage removed is kept
                r["outcome"] = KEPT
        tally.add(rows)
        for stage in counting:
            tally.statistics.update({(stage.name, k): v for k, v in stage.statistics(rows).items()})
        if part in BY_OUTCOME:  # (rebuilt from values: the same rows give the same bytes)
            writer.add(pa.Table.from_pylist(rows, schema=inflight))
            continue
        writer.add(to_sft(rows) if part == SFT else to_rl(rows, writer.rows))
    return tally, [{"path": f"{part}/{f['name']}", "part": part, "sha256": f["sha256"],
                    "bytes": f["bytes"]} for f in writer.close()]


write_part_task = ray.remote(num_cpus=1)(_write_part)


def write_parts(ds: Dataset, columns: pa.Schema, out: str, cfg: Any, stages: list[Stage],
                run_only: tuple[str, ...]) -> tuple[Tally, dict[str, dict[str, Any]]]:
    """All parts, written in parallel on the workers; returns the merged counts (with the
    statistics of each stage that keeps its own) and the files. `run_only` columns are counted,
    never written."""
    from pipeline.engine.stage import Stage

    counting = [s for s in stages if type(s).statistics is not Stage.statistics]
    blocks = ds.materialize().to_arrow_refs()  # read by every part's task, in key order
    orders = part_orders(blocks)
    max_bytes = cfg.output.shard_max_mb * 1024 * 1024
    refs = [write_part_task.remote(blocks, part, orders[part], columns, out, max_bytes,
                                   cfg.output.batch_rows, counting, run_only) for part in PARTS]
    log.warning("writing %s on the Ray workers", "/".join(PARTS))
    tally, files = Tally(), {}
    for part_tally, part_files in ray.get(refs):
        tally.merge(part_tally)
        files.update({f.pop("path"): f for f in part_files})
    return tally, files

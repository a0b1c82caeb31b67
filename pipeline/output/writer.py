"""Write the final rows as Parquet shards, one Ray task per output part.

The driver never holds the rows: each task reads the sorted dataset from the object store,
keeps its part's rows, writes them in order (so shard bytes depend only on the rows, not on
which node wrote them) and returns the counts for the manifest. A task that dies is retried
by Ray and rewrites the same files under the same names.
"""

from __future__ import annotations

import logging
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import ray
from ray.data import Dataset

from pipeline.engine import storage
from pipeline.engine.schema import (
    ALIVE,
    DEDUPLICATED,
    KEPT,
    PARTS,
    QUARANTINED,
    REJECTED,
    RUN_ONLY_COLUMNS,
    SFT,
    schema_of,
)
from pipeline.output.formats import RL_SCHEMA, SFT_SCHEMA, to_rl, to_sft
from pipeline.output.manifest import Tally
from pipeline.output.shards import ShardWriter

log = logging.getLogger("rubricforge")

BY_OUTCOME = {"rejected": REJECTED, "quarantine": QUARANTINED, "deduplicated": DEDUPLICATED}


def part_mask(part: str, batch: pa.Table) -> pa.Array:
    """The rows of `batch` that go to `part`: every row goes to exactly one."""
    outcome = batch.column("outcome")
    if part in BY_OUTCOME:
        return pc.equal(outcome, BY_OUTCOME[part])
    to_sft_part = pc.fill_null(pc.equal(batch.column("split"), SFT), False)
    return pc.and_(pc.equal(outcome, ALIVE), to_sft_part if part == "sft" else pc.invert(to_sft_part))


def _write_part(ds: Dataset, part: str, columns: tuple[str, ...], out: str, max_bytes: int,
                batch_rows: int) -> tuple[Tally, list[dict[str, Any]]]:
    inflight = schema_of([c for c in columns if c not in RUN_ONLY_COLUMNS])
    schema = {"sft": SFT_SCHEMA, "rl": RL_SCHEMA}.get(part, inflight)
    writer = ShardWriter(storage.join(out, part), schema, max_bytes)
    tally = Tally()
    for batch in ds.iter_batches(batch_size=batch_rows, batch_format="pyarrow"):
        rows = batch.filter(part_mask(part, batch)).to_pylist()
        if not rows:
            continue
        for r in rows:  # a row no stage removed is kept
            if r["outcome"] == ALIVE:
                r["outcome"] = KEPT
        tally.add(rows)
        if part == "sft":
            writer.add(to_sft(rows))
        elif part == "rl":
            writer.add(to_rl(rows, writer.rows))
        else:
            writer.add(pa.Table.from_pylist(rows, schema=inflight))
    return tally, [{"path": f"{part}/{f['name']}", "part": part, "sha256": f["sha256"],
                    "bytes": f["bytes"]} for f in writer.close()]


write_part_task = ray.remote(num_cpus=1)(_write_part)


def write_parts(ds: Dataset, columns: tuple[str, ...], out: str,
                cfg: Any) -> tuple[Tally, dict[str, dict[str, Any]]]:
    """All parts, written in parallel on the workers; returns the merged counts and the files."""
    ds = ds.materialize()  # the sorted rows, read by every part's task
    max_bytes = cfg.output.shard_max_mb * 1024 * 1024
    refs = [write_part_task.remote(ds, part, columns, out, max_bytes, cfg.output.batch_rows)
            for part in PARTS]
    log.warning("writing %d rows as %s on the Ray workers", ds.count(), "/".join(PARTS))
    tally, files = Tally(), {}
    for part_tally, part_files in ray.get(refs):
        tally.merge(part_tally)
        files.update({f.pop("path"): f for f in part_files})
    return tally, files

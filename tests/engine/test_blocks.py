"""Set stages on data of many blocks: blocks that a filter or a shuffle leaves without rows never
reach the next shuffle (Ray passes them on without columns, and concatenating one with a real
block fails)."""

from __future__ import annotations

import sys
from collections import Counter

import pyarrow as pa
import pytest
import ray

from pipeline.engine.ray_session import solid_blocks
from pipeline.engine.runner import apply_stage
from pipeline.engine.schema import ALIVE, CANONICAL_COLUMNS, QUARANTINED, conform, schema_of
from pipeline.engine.stage import BuildContext, Stage, map_rows
from pipeline.settings import load_config

pytestmark = pytest.mark.ray
CANONICAL = schema_of(CANONICAL_COLUMNS)
# the stages below travel to Ray's workers by value: the workers cannot import a test module
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


class CountPerSource(Stage):
    """A group stage: writes the size of the row's group."""

    name, inputs, outputs, group_by = "count_per_source", ("source",), ("detail",), ("source",)

    def process(self, rows: pa.Table) -> pa.Table:
        n = rows.num_rows
        return map_rows(rows, lambda _r: {"detail": str(n)})


class Again(CountPerSource):
    name = "again"


def blocks(sources: int, per_block: int, blocks_per_source: int) -> list[pa.Table]:
    """Blocks of one source each; every other block's rows are all already decided."""
    out = []
    for s in range(sources):
        for b in range(blocks_per_source):
            decided = b % 2 == 1
            rows = [{"pair_id": f"{s}-{b}-{i}", "source": f"s{s}", "source_index": b * per_block + i,
                     "outcome": QUARANTINED if decided else ALIVE,
                     "reason": "bad" if decided else ""} for i in range(per_block)]
            out.append(conform(pa.Table.from_pylist(rows), CANONICAL_COLUMNS))
    return out


@pytest.mark.parametrize("sources", [1, 3])
def test_group_stages_in_a_row_over_blocks_emptied_by_the_split(local_ray, sources):
    ctx = BuildContext(load_config([]))
    # Empty blocks first: a hash shuffle sends the schema of the first block it gets to every
    # partition, and an empty block leaves a map without columns
    empties = ray.data.from_arrow([CANONICAL.empty_table()] * 4).map_batches(
        lambda t: t, batch_format="pyarrow")
    ds = empties.union(ray.data.from_arrow(blocks(sources, per_block=50, blocks_per_source=4)))
    for stage in (CountPerSource(None, ctx), Again(None, ctx)):
        ds = apply_stage(ds, stage, CANONICAL_COLUMNS)
    ds = solid_blocks(ds.sort(["source", "source_index"]), schema_of(CANONICAL_COLUMNS))
    rows = ds.take_all()
    assert len(rows) == sources * 200
    assert len({(r["source"], r["source_index"]) for r in rows}) == len(rows)
    live = Counter((r["source"], r["detail"]) for r in rows if r["outcome"] == ALIVE)
    assert live == {(f"s{s}", "100"): 100 for s in range(sources)}  # 2 live blocks of 50 each
    assert all(r["reason"] == "bad" for r in rows if r["outcome"] == QUARANTINED)


def test_solid_blocks_drops_blocks_without_rows_and_keeps_a_schema(local_ray):
    schema = schema_of(CANONICAL_COLUMNS)
    full = blocks(1, per_block=5, blocks_per_source=1)[0]
    ds = ray.data.from_arrow([full, full.slice(0, 0), pa.table({}), full])
    ds = ds.map_batches(lambda t: t, batch_format="pyarrow")  # the empties lose their columns
    solid = solid_blocks(ds, schema)
    tables = ray.get(solid.to_arrow_refs())
    assert [t.num_rows for t in tables] == [5, 5] and all(t.schema == schema for t in tables)
    none = solid_blocks(ds.filter(lambda r: False), schema)
    assert none.count() == 0 and none.schema().base_schema == schema


def test_the_hang_warning_is_dropped_only_when_cpus_are_free(local_ray):
    import logging
    import time

    from pipeline.engine.ray_session import _NoFalseHangWarning

    def record(message: str) -> logging.LogRecord:
        return logging.LogRecord("ray.data.dataset", logging.WARNING, __file__, 1, message,
                                 None, None)

    hang = record("Warning: The Ray cluster currently does not have any available CPUs. "
                  "The Dataset job will hang unless more CPUs are freed up.")
    keep = _NoFalseHangWarning()
    assert keep.filter(record("something else")), "other warnings pass untouched"

    @ray.remote(num_cpus=2)
    def hold(seconds: float) -> None:
        time.sleep(seconds)

    ray.get(hold.remote(0.1))  # done: Ray's view of the CPUs lags behind
    assert not keep.filter(hang), "a false alarm once the finished task's CPUs show as free"
    busy = hold.remote(6)
    while ray.available_resources().get("CPU"):
        time.sleep(0.02)
    assert keep.filter(hang), "every CPU really held: the warning is a true one"
    ray.cancel(busy, force=True)

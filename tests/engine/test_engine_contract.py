"""The engine's guarantees that need no cluster: stages see only live rows and never drop one;
shards are bounded, named for the Hub and written byte-for-byte the same."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.engine.batches import StageContractError, apply_to_batch
from pipeline.engine.schema import ALIVE, CANONICAL_COLUMNS, QUARANTINED, conform
from pipeline.engine.stage import BuildContext, Stage, decide, map_rows
from pipeline.output.shards import ShardWriter, sha256_file

COLUMNS = (*CANONICAL_COLUMNS, "split")


def batch(outcomes: list[str]) -> pa.Table:
    rows = [{"pair_id": f"p{i}", "source": "s", "source_index": i, "outcome": o,
             "reason": "r" if o else "", "decided_by": "x" if o else ""}
            for i, o in enumerate(outcomes)]
    return conform(pa.Table.from_pylist(rows), CANONICAL_COLUMNS)


class Marks(Stage):
    name, inputs, outputs = "marks", ("pair_id",), ("split", "outcome", "reason", "decided_by")
    seen: list[int] = []

    def process(self, rows: pa.Table) -> pa.Table:
        Marks.seen.append(rows.num_rows)
        return map_rows(rows, lambda r: {"split": "rl"} | (
            decide(QUARANTINED, "odd", self.name) if r["source_index"] % 2 else {}))


class Drops(Marks):
    name = "drops"

    def process(self, rows: pa.Table) -> pa.Table:
        return rows.slice(1)


def test_stages_see_live_rows_only_and_decided_rows_pass_by():
    Marks.seen.clear()
    out = apply_to_batch(Marks(None, BuildContext(None)), COLUMNS,
                         batch([ALIVE, "rejected", ALIVE, ALIVE]))
    assert Marks.seen == [3]
    assert out.num_rows == 4 and out.column_names == list(COLUMNS)
    by_index = {r["source_index"]: r for r in out.to_pylist()}
    assert by_index[1]["outcome"] == "rejected" and by_index[1]["split"] is None
    assert by_index[3]["outcome"] == QUARANTINED and by_index[3]["reason"] == "odd"
    assert by_index[0]["outcome"] == ALIVE and by_index[0]["split"] == "rl"


def test_a_stage_that_drops_rows_is_stopped():
    with pytest.raises(StageContractError, match="never drop"):
        apply_to_batch(Drops(None, BuildContext(None)), COLUMNS, batch([ALIVE, ALIVE]))


def test_shards_are_bounded_named_and_deterministic(tmp_path):
    table = pa.table({"text": [f"row {i} " * 50 for i in range(1000)]})
    paths = []
    for run in ("a", "b"):
        writer = ShardWriter(tmp_path / run, table.schema, max_bytes=100_000)
        for i in range(0, 1000, 100):
            writer.add(table.slice(i, 100))
        paths.append(writer.close())
    first, second = paths
    assert len(first) > 1
    assert [f["name"] for f in first] == [f"train-{i:05d}-of-{len(first):05d}.parquet"
                                          for i in range(len(first))]
    assert first == second
    on_disk = [tmp_path / "a" / f["name"] for f in first]
    assert [sha256_file(p) for p in on_disk] == [f["sha256"] for f in first]
    assert [p.stat().st_size for p in on_disk] == [f["bytes"] for f in first]
    assert not list(tmp_path.rglob("*.partial")) and not list(tmp_path.rglob(".tmp-*"))
    assert sum(pq.read_table(p).num_rows for p in on_disk) == 1000


def test_an_empty_part_writes_no_file(tmp_path):
    writer = ShardWriter(tmp_path / "sft", pa.schema([("x", pa.int64())]), 1000)
    assert writer.close() == []


class Counts(Stage):
    """Works ahead on what it is given; its `process` is never reached here."""

    name, inputs, outputs = "counts", ("pair_id",), ("split",)
    given: list[pa.Table] = []

    def ahead(self, rows: pa.Table) -> None:
        Counts.given.append(rows)


def test_work_ahead_sees_only_the_live_rows_and_the_stage_s_columns():
    from pipeline.engine.batches import ahead_on

    stage = Counts(None, BuildContext(cfg=None))
    assert stage.works_ahead and not Marks(None, BuildContext(cfg=None)).works_ahead
    assert ahead_on(stage, batch([ALIVE, QUARANTINED, ALIVE])) == 2
    [rows] = Counts.given
    assert rows.column("pair_id").to_pylist() == ["p0", "p2"]
    assert "source_index" in rows.column_names  # the row key, as every stage gets it
    assert ahead_on(stage, batch([QUARANTINED])) == 0 and len(Counts.given) == 1

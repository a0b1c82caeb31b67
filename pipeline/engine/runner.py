"""Run one stage over a Ray Dataset: row stages per block (tasks or actors), group stages on
the driver over a few light columns, whole-dataset stages on the live rows alone.

Stages see only rows still in play; decided rows go around them, and every batch a stage
returns is checked against its declared contract.
"""

from __future__ import annotations

import logging
import threading
from functools import partial
from typing import Any

import pyarrow as pa
import ray
from ray.data import Dataset

from pipeline.engine.batches import (
    StageActor,
    StageContractError,
    ahead_in_background,
    apply_to_batch,
    apply_updates,
    check_output,
    decided_rows,
    live_columns,
    rows_in_play,
)
from pipeline.engine.ray_session import of_blocks, solid_blocks
from pipeline.engine.schema import ROW_KEY, Columns, conform, names_of, schema_of
from pipeline.engine.stage import Stage

# The names workers resolve (their module must import fast: pipeline/engine/batches.py)
_StageActor = StageActor
log = logging.getLogger("rubricforge")
# Work done ahead fills the CPU a teacher's wait leaves idle: half a CPU a task, and never more
# tasks at once than leave a whole CPU and half of the rest free, so a teacher's actor (or a
# server) starting as the work begins gets its CPU at once (four half-CPU tasks on two CPUs held
# the chains' actor back 36 s on the 73K build).
AHEAD_CPUS = 0.5


def apply_stage(ds: Dataset, stage: Stage, columns: Columns) -> Dataset:
    """The stage over the dataset; a row stage sees a whole block per call."""
    stage.prepare()
    if stage.group_by is not None:
        return _apply_to_groups(ds, stage, columns)
    if stage.whole_dataset:
        return _apply_to_live_set(ds, stage, columns)
    resources = stage.configured_resources()
    res = resources.ray_args()
    if resources.actors:
        return ds.map_batches(_StageActor, fn_constructor_args=(stage, columns),
                              compute=ray.data.ActorPoolStrategy(size=resources.actors),
                              batch_format="pyarrow", batch_size=None, **res)
    return ds.map_batches(partial(apply_to_batch, stage, columns), batch_format="pyarrow",
                          batch_size=None, **res)


def _apply_to_groups(ds: Dataset, stage: Stage, columns: Columns) -> Dataset:
    """Group stages read a few light columns (ids, labels) of many rows: those columns of the
    rows in play are gathered on the driver, each group is given to the stage there, and its
    outputs are mapped back onto the rows. No row moves through a shuffle."""
    names = tuple(dict.fromkeys((*ROW_KEY, *stage.group_by, *stage.inputs,
                                 *(c for c in stage.optional_inputs if c in names_of(columns)))))
    ds = ds.materialize()
    parts = [t for t in ray.get(ds.map_batches(partial(live_columns, stage, names),
                                               batch_format="pyarrow").to_arrow_refs())
             if t.num_rows]
    if not parts:
        return ds.map_batches(partial(conform, columns=columns), batch_format="pyarrow")
    live = pa.concat_tables(parts)
    outputs = []
    for _key, rows in _groups(live, stage.group_by):
        out = stage.process(rows)
        check_output(stage, rows.num_rows, out)
        outputs.append(conform(out, (*ROW_KEY, *stage.outputs)))
    updates = ray.put(pa.concat_tables(outputs))
    return ds.map_batches(partial(apply_updates, stage, columns, updates), batch_format="pyarrow")


def _groups(rows: pa.Table, keys: tuple[str, ...]) -> list[tuple[tuple[Any, ...], pa.Table]]:
    """The rows of each distinct value of `keys`, in a stable order (rows keep their order)."""
    if not keys:
        return [((), rows)]
    index: dict[tuple[Any, ...], list[int]] = {}
    for i, key in enumerate(zip(*(rows.column(k).to_pylist() for k in keys), strict=True)):
        index.setdefault(key, []).append(i)
    return [(key, rows.take(index[key])) for key in sorted(index, key=repr)]


# One task per block: its decided rows and how many are in play, without a Ray Data job (each
# costs about a second of planning and scheduling on a small machine).
_decided_part = ray.remote(num_cpus=1, num_returns=3)(decided_rows)


def _apply_to_live_set(ds: Dataset, stage: Stage, columns: Columns) -> Dataset:
    """Stages that need all live rows at once (dedup across sources) get them as a dataset;
    decided rows go around them. The rows in play are not copied: the stage reads the blocks
    that hold some through a filter (each of its passes filters again, which costs far less
    than storing the rows once more). Every block it reads has rows in play and columns: a
    shuffle or sort that meets an empty block without columns fails."""
    blocks = ds.materialize().to_arrow_refs()
    parts = [_decided_part.remote(stage, columns, ref) for ref in blocks]
    n_live, n_done = ray.get([p[1] for p in parts]), ray.get([p[2] for p in parts])
    done_refs = [p[0] for p, n in zip(parts, n_done, strict=True) if n]
    live_blocks = [ref for ref, n in zip(blocks, n_live, strict=True) if n]
    n_live = sum(n_live)
    if n_live == 0:
        return of_blocks(done_refs, schema_of(columns))
    live = ray.data.from_arrow_refs(live_blocks).map_batches(
        partial(rows_in_play, stage), batch_format="pyarrow", batch_size=None)
    out = stage.process_dataset(live).map_batches(
        partial(conform, columns=columns), batch_format="pyarrow").materialize()
    added = sum(stage.added.values())
    if out.count() != n_live + added:
        raise StageContractError(f"stage '{stage.name}' returned {out.count()} rows for {n_live}"
                                 + (f" and {added} added" if added else "")
                                 + ": stages mark rows, they never drop them")
    return of_blocks([*solid_blocks(out, schema_of(columns)).to_arrow_refs(), *done_refs],
                     schema_of(columns))


class Ahead:
    """The work ahead of some stages, submitted from a thread of the driver a few tasks at a
    time, only while the driver waits on a teacher: once the teachers have answered, the CPU
    is the stages' again, and a stage reached does the blocks not yet begun itself (its own
    warm workers at full priority beat a process started per block at the lowest)."""

    def __init__(self, ds: Dataset, stages: list[Stage]) -> None:
        blocks = ds.to_arrow_refs()
        self.todo = [(s, ref) for s in stages for ref in blocks]
        self.blocks = len(blocks)
        self.refs: dict[str, list[Any]] = {s.name: [] for s in stages}
        cpus = ray.cluster_resources().get("CPU", 1.0)
        self.at_once = max(1, int((cpus - 1) / 2 / AHEAD_CPUS))
        self.turn = threading.Condition()
        self.waiting = True  # on a teacher: started as the first requests go
        self.reached: set[str] = set()
        self.thread = threading.Thread(target=self._submit, name="work-ahead", daemon=True)
        self.thread.start()

    def _submit(self) -> None:
        running: list[Any] = []
        for stage, block in self.todo:
            if len(running) >= self.at_once:
                _, running = ray.wait(running, num_returns=1)
            with self.turn:
                self.turn.wait_for(lambda s=stage: self.waiting or s.name in self.reached)
                if stage.name in self.reached:
                    continue
                ref = _ahead_task.remote(stage, block)
                self.refs[stage.name].append(ref)
            running.append(ref)

    def waiting_on_teachers(self, waiting: bool) -> None:
        """Work ahead while a teacher answers; hold what is left while none does."""
        with self.turn:
            self.waiting = waiting
            self.turn.notify_all()

    def finish(self, name: str) -> None:
        """Before the stage runs: nothing more of its work is begun ahead; wait for what was
        (it fills a cache; what failed or was left undone the stage does itself, so a failure
        is only logged)."""
        if name not in self.refs:
            return
        with self.turn:
            self.reached.add(name)
            self.turn.notify_all()
            refs = self.refs.pop(name)
        rows = 0
        for ref in refs:
            try:
                rows += ray.get(ref)
            except Exception as exc:  # work ahead never fails a build
                log.warning("%s: work ahead failed (%s); the stage does it", name, exc)
        log.warning("%s: %d rows worked on ahead (%d of %d blocks), while the teachers answered",
                    name, rows, len(refs), self.blocks)


# One task per worker process: what a task loaded (a tokenizer, its buffers) is given back when
# it ends, not kept by an idle worker for the rest of the build (+0.8 GiB at 73K pairs), and its
# low priority ends with it.
_ahead_task = ray.remote(num_cpus=AHEAD_CPUS, max_calls=1)(ahead_in_background)


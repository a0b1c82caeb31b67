"""Start a local Ray for one build (and stop it), or join the cluster the user names."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import ray

from pipeline.engine.signals import unwind_on_sigterm

log = logging.getLogger("rubricforge")


BLOCK_ROWS = 4096
MAX_BLOCK_ROWS = 16384


def rows_per_block(total_rows: int, setting: int | None) -> int:
    """`ray.block_rows`, or, when it is null, about two blocks per CPU of the cluster, of
    4,096 to 16,384 rows. A block is a task in every stage, and each task has a fixed cost
    (scheduling, its stage's set-up) that made small blocks dear on a small machine: the 73K
    warm rebuild took 70 s in 4,096-row blocks, 53 s in 16,384-row ones (bench/RESULTS.md).
    The cap bounds what one task holds in memory; the floor keeps a big cluster from cutting a
    small input into slivers."""
    if setting is not None:
        return setting
    cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
    return min(MAX_BLOCK_ROWS, max(BLOCK_ROWS, -(-total_rows // (2 * cpus))))


def dataset_of(table: Any, rows_per_block: int = BLOCK_ROWS) -> Any:
    """A Ray Dataset in blocks of bounded size, so work spreads over every CPU and no task
    holds a whole source."""
    slices = [table.slice(i, rows_per_block) for i in range(0, table.num_rows, rows_per_block)]
    return ray.data.from_arrow(slices or [table])


# A whole CPU, though it is trivial: tasks that ask for less run many at once, and each needs a
# worker process of its own (a second of CPU to start one).
@ray.remote(num_cpus=1)
def _num_rows(block: pa.Table) -> int:
    return block.num_rows


def solid_blocks(ds: Any, schema: pa.Schema) -> Any:
    """The dataset's rows in blocks that all have rows and columns.

    Ray Data never calls a map function on a block without rows: it passes an empty block
    *without columns* downstream instead. Filters and hash shuffles make such blocks (a block
    whose rows all went the other way, a partition no group fell into), and the next shuffle
    or sort that concatenates one with a real block fails with `ArrowInvalid: Schema at index
    ... was different`. So every dataset that enters a shuffle is rebuilt from its non-empty
    blocks; with none left, from one empty block with `schema`."""
    refs = ds.to_arrow_refs()
    rows = ray.get([_num_rows.remote(ref) for ref in refs])
    return of_blocks([ref for ref, n in zip(refs, rows, strict=True) if n], schema)


class _NoFalseHangWarning(logging.Filter):
    """Ray Data checks for free CPUs as a job starts, in a view of the cluster that lags about
    0.1 s behind: a job started right after the previous one's tasks (or a stage's actors)
    finished logs "The Ray cluster currently does not have any available CPUs. The Dataset job
    will hang", and every full build printed it while nothing hung. The warning is held until
    the view shows free CPUs (2 s at most) and dropped if it then does; on a cluster that
    others keep busy it is let through, as the true warning it then is."""

    def filter(self, record: logging.LogRecord) -> bool:
        if "does not have any available CPUs" not in record.getMessage():
            return True
        deadline = time.monotonic() + 2.0
        while not ray.available_resources().get("CPU") and time.monotonic() < deadline:
            time.sleep(0.02)
        return not ray.available_resources().get("CPU")


def of_blocks(refs: list[Any], schema: pa.Schema) -> Any:
    """A dataset of these blocks (each with rows); with none, of one empty block with `schema`."""
    return ray.data.from_arrow_refs(refs) if refs else ray.data.from_arrow(schema.empty_table())


@ray.remote(num_cpus=0)
def _ready() -> bool:
    return True


def joined_cluster(ray_cfg: Any) -> bool:
    """Whether the build runs on a cluster someone else started (rather than a local Ray)."""
    return bool(ray_cfg.address or os.environ.get("RAY_ADDRESS"))


@contextlib.contextmanager
def ray_session(ray_cfg: Any) -> Iterator[None]:
    address = ray_cfg.address or os.environ.get("RAY_ADDRESS")
    started_here = False
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": True}
        if address:
            ray.init(address=address, **kwargs)
            log.warning("joined the Ray cluster at %s", address)
        else:
            # One object per spill file: Ray deletes a spill file only when every object in it
            # is freed, and a fused file of a stage's blocks stayed on disk for the whole build
            # when one small long-lived object (a stage's index) had been spilled with them.
            # Idle workers are kept for a minute, not a second: while one stage's actors hold
            # the CPUs, the task workers wait, and each started again costs the next stage a
            # second or two of start-up and imports.
            # address="local": a new Ray of this build's own, even where another one runs on
            # this machine (a bare ray.init() joins it, and then refuses num_cpus)
            ray.init(address="local", num_cpus=ray_cfg.num_cpus, include_dashboard=False,
                     _system_config={"max_fused_object_count": 1,
                                     "idle_worker_killing_time_threshold_ms": 60_000}, **kwargs)
            log.warning("started a local Ray (%s CPUs)", ray.cluster_resources().get("CPU"))
        started_here = True
        unwind_on_sigterm()  # Ray's handlers replaced the run's own
    # A first trivial task makes Ray report the node's resources before Ray Data plans work;
    # without it the first Data job can stall for a minute.
    ray.get(_ready.remote())
    hang_warning = logging.getLogger("ray.data.dataset")  # where Ray Data logs it
    no_false_alarm = _NoFalseHangWarning()
    hang_warning.addFilter(no_false_alarm)
    try:
        yield
    finally:
        hang_warning.removeFilter(no_false_alarm)
        if started_here:
            ray.shutdown()

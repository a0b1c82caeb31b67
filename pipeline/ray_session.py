"""Start a local Ray for one build (and stop it), or join the cluster the user names."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import Any

import ray

log = logging.getLogger("rubricforge")


BLOCK_ROWS = 4096


def dataset_of(table: Any, rows_per_block: int = BLOCK_ROWS) -> Any:
    """A Ray Dataset in blocks of bounded size, so work spreads over every CPU and no task
    holds a whole source."""
    slices = [table.slice(i, rows_per_block) for i in range(0, table.num_rows, rows_per_block)]
    return ray.data.from_arrow(slices or [table])


def shuffle_partitions() -> int:
    """Partitions for a groupby: one per CPU (groups are few or bucketed), not Ray's 200."""
    return max(1, min(32, int(ray.cluster_resources().get("CPU", 1))))


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
            ray.init(num_cpus=ray_cfg.num_cpus, include_dashboard=False, **kwargs)
            log.warning("started a local Ray (%s CPUs)", ray.cluster_resources().get("CPU"))
        started_here = True
    # A first trivial task makes Ray report the node's resources before Ray Data plans work;
    # without it the first Data job can stall for a minute.
    ray.get(_ready.remote())
    try:
        yield
    finally:
        if started_here:
            ray.shutdown()

"""What every benchmark reports beside its own numbers: the machine and the peak memory."""

from __future__ import annotations

import contextlib
import os
import platform
import threading
import time
from typing import Any

import psutil
import pyarrow as pa


def machine() -> str:
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
            f"{psutil.virtual_memory().total / 2**30:.0f} GiB")


class PeakMemory:
    """Samples the resident memory of this process and all its descendants (Ray's included)."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for p in [me, *me.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):  # a worker that just exited
                    total += p.memory_info().rss
            self.peak = max(self.peak, total)
            time.sleep(0.5)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run_stage(stage: Any, table: pa.Table, columns: list[str]) -> tuple[pa.Table, float, int]:
    """Run a whole-dataset stage on a fresh local Ray with every core: the columns asked for,
    the wall time and the peak memory (this process and its Ray workers)."""
    import ray

    from pipeline.engine.ray_session import dataset_of

    ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False, logging_level="ERROR")
    try:
        with PeakMemory() as mem:
            t = time.monotonic()
            out = stage.process_dataset(dataset_of(table)).select_columns(columns)
            result = pa.concat_tables(ray.get(out.to_arrow_refs()))
            seconds = time.monotonic() - t
    finally:
        ray.shutdown()
    return result, seconds, mem.peak

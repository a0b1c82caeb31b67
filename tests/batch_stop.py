"""A build stopped while its batch job waits at the provider, for the batch backends' tests:
the jobs run in a thread until a job's id is saved, then are cancelled as Ctrl-C cancels them."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest

from pipeline.teachers.cache import ResponseCache
from pipeline.teachers.spend import MeterHandle


def stop_while_a_job_waits(jobs_of: type, cfg: Any, requests: dict[str, dict[str, Any]]) -> None:
    """Answer `requests` with `jobs_of` (a `BatchJobs` class) until a job is saved under the
    cache's batches/, then stop. The provider must not end the job meanwhile (stall it)."""
    stopped = threading.Event()

    def run_until_stopped() -> None:
        async def go() -> None:
            client = jobs_of.client(cfg)
            jobs = jobs_of(cfg, client, ResponseCache(cfg.cache_dir), MeterHandle("teacher"))
            task = asyncio.ensure_future(jobs.answer(requests))
            while not stopped.is_set():
                await asyncio.sleep(0.01)
            task.cancel()  # the build is stopped while it waits on the job
            with pytest.raises(asyncio.CancelledError):
                await task
            await client.close()
        asyncio.run(go())

    thread = threading.Thread(target=run_until_stopped)
    thread.start()
    saved = Path(cfg.cache_dir).expanduser() / "batches"
    while not list(saved.glob("*.json")):
        assert thread.is_alive()
    stopped.set()
    thread.join()

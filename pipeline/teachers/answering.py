"""Answer a teacher stage's uncached requests into the cache before the stage reads them.

A stage that asked its teacher batch by batch waited for each batch's slowest answer before
it sent the next batch, and only the rows of a batch that wanted the teacher were in flight
(12% of 256 in `rmr1`): a heavy-tailed API was busy a third of the time. So the engine
collects the requests the cache cannot answer (`request_table` rows) and answers them here as
one stream, `teacher.concurrency` in flight from the first request to the last; the stage then
reads every answer from the cache, so its rows and the shards are what they were.

Backends asked request by request (APIs, servers, engines) are asked from `resources.actors`
Ray actors (the stage's setting, default 1), each with its share of the request blocks and of
the concurrency; the cost cap, the RPM/TPM budget and the progress meters are the build-wide
actors they always were. The Batch API answers its own way (pipeline/teachers/batch_jobs.py).
Where several teacher stages follow each other, backends asked request by request are
asked in chains first (pipeline/teachers/chains.py), and a pass asks only what its chains did
not.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import ray

from pipeline.engine.batches import REQUEST_SCHEMA
from pipeline.engine.ray_session import solid_blocks
from pipeline.teachers.client import Answered, TeacherClient
from pipeline.teachers.transport import Endpoint

log = logging.getLogger("rubricforge")
# After Ctrl-C, how long the answers already on their way may take to reach the cache.
DRAIN_S = 20.0


class _Answerer:
    """One client's share of a stage's requests (a Ray actor)."""

    def answer(self, teacher_cfg: Any, endpoints: list[Endpoint], meter: Any, stage: str,
               share: int, blocks: list[Any]) -> Answered:
        client = TeacherClient(teacher_cfg, endpoints, meter, stage)
        client.cfg.concurrency = share
        # `blocks` holds object refs (a list is not resolved by Ray): fetched one at a time
        return client.answer_stream(ray.get(ref) for ref in blocks)


def answer_with_actors(requests: Any, teacher_cfg: Any, stage: str, meter: Any,
                       endpoints: list[Endpoint], actors: int, num_cpus: float | None
                       ) -> Answered:
    """An API backend's way: `actors` client actors, each with its share of the request blocks
    and of `teacher.concurrency`."""
    blocks = solid_blocks(requests, REQUEST_SCHEMA).to_arrow_refs()
    actors = min(actors, len(blocks))
    share = max(1, -(-teacher_cfg.concurrency // actors))
    # A dead actor is restarted and its call run again: answers already cached are read back,
    # so nothing is paid twice.
    remote = ray.remote(_Answerer).options(num_cpus=num_cpus, max_restarts=3,
                                           max_task_retries=3)
    workers = [remote.remote() for _ in range(actors)]
    calls = [w.answer.remote(teacher_cfg, endpoints, meter, stage, share, blocks[i::actors])
             for i, w in enumerate(workers)]
    answered: Answered = {}
    try:
        for part in ray.get(calls):
            answered |= part
    except KeyboardInterrupt:
        interrupted([meter], calls)
        raise
    finally:
        for w in workers:
            ray.kill(w)
    failed = sum(e is not None for e in answered.values())
    log.warning("%s: teacher %s answered %d requests, %d failed", stage, teacher_cfg.model,
                len(answered) - failed, failed)
    return answered


def interrupted(meters: list[Any], calls: list[Any]) -> None:
    """Ctrl-C: send nothing more, and give the answers in flight (already paid for) a few
    seconds to reach the cache; a second Ctrl-C stops at once."""
    for meter in meters:
        meter.stop.remote()
    log.warning("interrupted: sending nothing more; waiting up to %.0fs for the answers in "
                "flight to reach the cache (Ctrl-C again to stop at once)", DRAIN_S)
    with contextlib.suppress(KeyboardInterrupt):
        ray.wait(calls, num_returns=len(calls), timeout=DRAIN_S)

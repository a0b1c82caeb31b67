"""The OpenAI Batch API: a pass's requests as JSON-lines jobs, answered within 24 h
(pipeline/teachers/batch_jobs.py). A job is one pass by nature: no chains
(pipeline/teachers/chains.py), and no request is ever sent one by one at the full price."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, ClassVar

from pipeline.engine.stage import Resources
from pipeline.teachers.backends.openai import APIConfig, OpenAIBackend
from pipeline.teachers.transport import Endpoint


@dataclass
class BatchAPIConfig(APIConfig):
    # The Batch API bills half the synchronous price.
    price_factor: ClassVar[float] = 0.5
    chainable: ClassVar[bool] = False

    # Seconds between polls of a batch job.
    batch_poll_s: float = 30.0


class OpenAIBatchBackend(OpenAIBackend):
    name = "openai_batch"
    Config = BatchAPIConfig

    def endpoints(self, t: Any, pending: int, run: Any) -> list[Endpoint]:
        """None for the client: what the jobs did not answer is a row's error, never a
        synchronous request."""
        return []

    def answer(self, requests: Any, n: int, t: Any, stage: str, meter: Any,
               endpoints: list[Endpoint], resources: Resources) -> dict[str, str | None]:
        """The pass's requests in as few jobs as the API takes, waited for from the driver
        (the work is the provider's)."""
        from pipeline.teachers.batch_jobs import OpenAIJobs, answer_in_jobs

        return answer_in_jobs(pending_requests(requests), t, stage, meter, OpenAIJobs)


def pending_requests(requests: Any) -> dict[str, dict[str, Any]]:
    """A pass's uncached requests (a Ray Dataset of `request_table` rows) by cache key, on the
    driver: a batch job is submitted from one place."""
    return {k: json.loads(r) for batch in requests.iter_batches(batch_format="pyarrow",
                                                                 batch_size=None)
            for k, r in zip(batch.column("key").to_pylist(),
                            batch.column("request").to_pylist(), strict=True)}

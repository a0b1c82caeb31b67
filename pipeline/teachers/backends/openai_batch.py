"""The OpenAI Batch API: a pass's requests as one JSON-lines job, answered within 24 h. A job
is one pass by nature: no chains (pipeline/teachers/chains.py) for this backend."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from pipeline.engine.stage import Resources
from pipeline.teachers.backends.openai import APIConfig, OpenAIBackend
from pipeline.teachers.transport import Endpoint


@dataclass
class BatchAPIConfig(APIConfig):
    # The Batch API bills half the synchronous price, and takes a pass's requests as one job.
    price_factor: ClassVar[float] = 0.5
    one_job_per_pass: ClassVar[bool] = True
    chainable: ClassVar[bool] = False

    # Seconds between polls of a batch job.
    batch_poll_s: float = 30.0


class OpenAIBatchBackend(OpenAIBackend):
    name = "openai_batch"
    Config = BatchAPIConfig

    def answer(self, requests: Any, n: int, t: Any, stage: str, meter: Any,
               endpoints: list[Endpoint], resources: Resources) -> dict[str, str | None]:
        """One client, one job for the pass's requests."""
        from pipeline.teachers.answering import answer_with_actors

        return answer_with_actors(requests, t, stage, meter, endpoints, 1, resources.num_cpus)

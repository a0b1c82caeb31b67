"""Anthropic's Message Batches API: a pass's requests in as few batches as its limits allow,
answered within 24 h at half the price (pipeline/teachers/batch_jobs.py), as RM-R1's authors
ran pass 1 on Claude. One pass at a time by nature (no chains), and no request is ever sent one
by one at the full price."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from pipeline.engine.stage import Resources
from pipeline.teachers.backends.anthropic import AnthropicBackend, AnthropicConfig
from pipeline.teachers.backends.openai_batch import pending_requests
from pipeline.teachers.transport import Endpoint


@dataclass
class AnthropicBatchConfig(AnthropicConfig):
    # Message Batches bill half the Messages API's price (cache reads and writes included).
    price_factor: ClassVar[float] = 0.5
    chainable: ClassVar[bool] = False

    # Seconds between polls of a batch.
    batch_poll_s: float = 30.0


class AnthropicBatchBackend(AnthropicBackend):
    name = "anthropic_batch"
    Config = AnthropicBatchConfig

    def endpoints(self, t: Any, pending: int, run: Any) -> list[Endpoint]:
        """None for the client: what the batches did not answer is a row's error, never a
        synchronous request."""
        return []

    def answer(self, requests: Any, n: int, t: Any, stage: str, meter: Any,
               endpoints: list[Endpoint], resources: Resources) -> dict[str, str | None]:
        from pipeline.teachers.batch_jobs import AnthropicJobs, answer_in_jobs

        return answer_in_jobs(pending_requests(requests), t, stage, meter, AnthropicJobs)

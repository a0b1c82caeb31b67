"""The OpenAI Batch API: a stage's requests as one JSON-lines job, answered within 24 h."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.teachers.backends.openai import APIConfig, OpenAIBackend


@dataclass
class BatchAPIConfig(APIConfig):
    # Seconds between polls of a batch job.
    batch_poll_s: float = 30.0


class OpenAIBatchBackend(OpenAIBackend):
    name = "openai_batch"
    Config = BatchAPIConfig
    # The Batch API bills half the synchronous price.
    price_factor = 0.5
    batch = True

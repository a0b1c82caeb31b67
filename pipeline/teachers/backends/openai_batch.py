"""The OpenAI Batch API: a pass's requests as JSON-lines jobs, answered within 24 h
(pipeline/teachers/batch_jobs.py). A job is one pass by nature: no chains
(pipeline/teachers/chains.py), and no request is ever sent one by one at the full price."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from pipeline.teachers.backends.base import AnswersInJobs
from pipeline.teachers.backends.openai import APIConfig, OpenAIBackend
from pipeline.teachers.batch_jobs import OpenAIJobs


@dataclass
class BatchAPIConfig(APIConfig):
    # The Batch API bills half the synchronous price.
    price_factor: ClassVar[float] = 0.5
    chainable: ClassVar[bool] = False

    # Seconds between polls of a batch job.
    batch_poll_s: float = 30.0


class OpenAIBatchBackend(AnswersInJobs, OpenAIBackend):
    name = "openai_batch"
    Config = BatchAPIConfig
    jobs = OpenAIJobs

"""Anthropic's Message Batches API: a pass's requests in as few batches as its limits allow,
answered within 24 h at half the price (pipeline/teachers/batch_jobs.py), as RM-R1's authors
ran pass 1 on Claude. One pass at a time by nature (no chains), and no request is ever sent one
by one at the full price."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from pipeline.teachers.backends.anthropic import AnthropicBackend, AnthropicConfig
from pipeline.teachers.backends.base import AnswersInJobs
from pipeline.teachers.batch_jobs import AnthropicJobs


@dataclass
class AnthropicBatchConfig(AnthropicConfig):
    # Message Batches bill half the Messages API's price (cache reads and writes included).
    price_factor: ClassVar[float] = 0.5
    chainable: ClassVar[bool] = False

    # Seconds between polls of a batch.
    batch_poll_s: float = 30.0


class AnthropicBatchBackend(AnswersInJobs, AnthropicBackend):
    name = "anthropic_batch"
    Config = AnthropicBatchConfig
    jobs = AnthropicJobs

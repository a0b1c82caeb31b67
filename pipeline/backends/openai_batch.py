"""The OpenAI Batch API: a stage's requests as one JSON-lines job, answered within 24 h."""

from __future__ import annotations

from pipeline.backends.openai import OpenAIBackend


class OpenAIBatchBackend(OpenAIBackend):
    name = "openai_batch"
    # The Batch API bills half the synchronous price.
    price_factor = 0.5
    batch = True

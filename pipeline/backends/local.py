"""The embedded model (or `checkpoint`) served by vLLM's OpenAI-compatible server in Ray
actors, started the first time a stage has requests the cache cannot answer."""

from __future__ import annotations

import logging
from typing import Any

from pipeline.backends.base import Backend

log = logging.getLogger("rubricforge")


class LocalBackend(Backend):
    name = "local"
    serves_checkpoint = True

    def urls(self, t: Any, pending: int, endpoints: Any) -> list[str] | None:
        """Servers are shared by every stage that asks the same model (`endpoints.local`)."""
        from pipeline.local_server import LocalEngines

        if t.model not in endpoints.local and pending:
            log.warning("starting the local teacher (%d vLLM server(s), about a minute on CPU); "
                        "log: %s", t.replicas, endpoints.log_path)
            endpoints.local[t.model] = endpoints.stack.enter_context(
                LocalEngines(t, endpoints.log_path, endpoints.on_cluster))
        return endpoints.local.get(t.model)

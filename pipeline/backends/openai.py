"""Any OpenAI-compatible chat-completions endpoint (OpenAI, a vLLM server, a gateway)."""

from __future__ import annotations

import os
from typing import Any

from pipeline.backends.base import Backend
from pipeline.config import ConfigError


class OpenAIBackend(Backend):
    name = "openai"

    def check(self, key: str, t: Any, asked: bool) -> None:
        super().check(key, t, asked)
        if asked and not os.environ.get(t.api_key_env) and not t.base_url:
            raise ConfigError(f"config error: {key}={t.backend} needs an API key in the "
                              f"environment variable {t.api_key_env} (key: {key}.api_key_env), "
                              f"or set {key}.base_url for a server without keys")

"""Any OpenAI-compatible chat-completions endpoint (OpenAI, a vLLM server, a gateway)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, ClassVar

from pipeline.engine.config import ConfigError
from pipeline.teachers.backends.base import Backend, TeacherConfig
from pipeline.teachers.transport import Endpoint, HTTPEndpoint


@dataclass
class APIConfig(TeacherConfig):
    chainable: ClassVar[bool] = True
    # OpenAI caches prompt prefixes of 1,024+ tokens by itself and bills their reads at about
    # half the input price or less (conf/prices.yaml has each model's); writes cost nothing extra.
    cache_read_factor: ClassVar[float] = 0.5
    # The endpoint (null: OpenAI's), and the environment variable that holds the key (the key
    # itself is never written anywhere).
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"

    @classmethod
    def secret_of(cls, t: Any) -> str | None:
        return os.environ.get(t.api_key_env) or None


class OpenAIBackend(Backend):
    name = "openai"
    Config = APIConfig

    def check_secret(self, key: str, t: Any) -> None:
        if not os.environ.get(t.api_key_env) and not t.base_url:
            raise ConfigError(f"{key}={t.backend} needs an API key in the "
                              f"environment variable {t.api_key_env} (key: {key}.api_key_env), "
                              f"or set {key}.base_url for a server without keys")

    def endpoints(self, t: Any, pending: int, run: Any) -> list[Endpoint]:
        return [HTTPEndpoint(t.base_url)]

"""Anthropic's Messages API through the `anthropic` SDK: Claude as RM-R1's authors asked it,
request by request (so chained, like `openai`), with the judge prompt's instructions marked for
prompt caching, optional extended thinking, and Anthropic's own errors (429, 529 overloaded)
retried by the client."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, ClassVar

from pipeline.engine.config import ConfigError
from pipeline.teachers.backends.base import Backend, TeacherConfig
from pipeline.teachers.transport import AnthropicEndpoint, Endpoint

# Anthropic's smallest extended-thinking budget, in tokens.
MIN_THINKING_BUDGET = 1024


@dataclass
class AnthropicConfig(TeacherConfig):
    chainable: ClassVar[bool] = True
    # Prompt caching: reads cost about a tenth of the input price, writes 1.25 times it.
    cache_read_factor: ClassVar[float] = 0.1
    cache_write_factor: ClassVar[float] = 1.25

    # The endpoint (null: Anthropic's), and the environment variable that holds the key (the
    # key itself is never written anywhere).
    base_url: str | None = None
    api_key_env: str = "ANTHROPIC_API_KEY"
    # Mark the system prompt (the judge's instructions, the same on every request) for prompt
    # caching. Anthropic caches a prefix only from a model's minimum length on
    # (conf/prices.yaml, min_cached_prefix); a shorter one is billed at the input price.
    cache_prompt: bool = True
    # Extended thinking: tokens the model may think before it answers (null: off; at least
    # 1,024 and under max_tokens). The thinking is kept in the teacher cache beside the answer
    # (`reasoning`), never in the trace.
    thinking_budget: int | None = None

    @classmethod
    def secret_of(cls, t: Any) -> str | None:
        return os.environ.get(t.api_key_env) or None

    @classmethod
    def request_extras(cls, t: Any) -> dict[str, Any]:
        if t.thinking_budget is None:
            return {}
        return {"thinking": {"type": "enabled", "budget_tokens": t.thinking_budget}}


class AnthropicBackend(Backend):
    name = "anthropic"
    Config = AnthropicConfig

    def check(self, key: str, t: Any, asked: bool) -> None:
        super().check(key, t, asked)
        budget = t.thinking_budget
        if budget is not None and not MIN_THINKING_BUDGET <= budget < t.max_tokens:
            raise ConfigError(f"{key}.thinking_budget={budget}: set at least "
                              f"{MIN_THINKING_BUDGET} and under {key}.max_tokens={t.max_tokens} "
                              "(the answer comes after the thinking), or null for no thinking")
        if budget is not None and t.temperature not in (None, 1, 1.0):
            raise ConfigError(f"{key}.temperature={t.temperature}: Anthropic takes no "
                              f"temperature but 1 with extended thinking ({key}.thinking_budget); "
                              "set it to null")

    def check_secret(self, key: str, t: Any) -> None:
        if not os.environ.get(t.api_key_env) and not t.base_url:
            raise ConfigError(f"{key}={t.backend} needs an API key in the environment variable "
                              f"{t.api_key_env} (key: {key}.api_key_env)")

    def endpoints(self, t: Any, pending: int, run: Any) -> list[Endpoint]:
        return [AnthropicEndpoint(t.base_url)]

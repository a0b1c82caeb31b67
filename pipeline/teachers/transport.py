"""How one request reaches a teacher. A backend hands out endpoints (picklable: they travel to
the actors that ask); an endpoint connects, in the asking process, to a sender that posts one
chat-completions body and returns the JSON an OpenAI-compatible API answers. The client
(pipeline/teachers/client.py) owns everything around it (concurrency, budget, retries, cap,
cache) and never knows which kind it holds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol


class Sender(Protocol):
    async def post(self, body: dict[str, Any]) -> Any: ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class HTTPEndpoint:
    """An OpenAI-compatible API (None: the provider's default URL)."""

    url: str | None

    def __str__(self) -> str:
        return self.url or "the provider's default URL"

    def connect(self, teacher_cfg: Any, secret: str | None) -> HTTPSender:
        return HTTPSender(teacher_cfg, self.url, secret)


class HTTPSender:
    def __init__(self, teacher_cfg: Any, url: str | None, secret: str | None) -> None:
        import openai

        # Retries are the client's, not the SDK's: a 429 must pause every worker, not just one.
        self.client = openai.AsyncOpenAI(base_url=url, api_key=secret or "unused",
                                         timeout=teacher_cfg.timeout_s, max_retries=0,
                                         http_client=_http_client(teacher_cfg))

    async def post(self, body: dict[str, Any]) -> Any:
        import httpx2

        # `post` sends the body as built and returns the raw response: the SDK's typed request
        # (`chat.completions.create`) and typed response would each walk the message again,
        # ~0.5 ms of CPU per request at the rates a build asks; the cache keeps the JSON anyway
        raw = await self.client.post("/chat/completions", body=body, cast_to=httpx2.Response)
        return json.loads(raw.content)

    async def close(self) -> None:
        await self.client.close()


def _http_client(teacher_cfg: Any) -> Any:
    """The SDK's aiohttp transport, with a connection for every request in flight: it spends
    about 20% less CPU per request than the default httpx one (bench/RESULTS.md)."""
    import httpx2
    import openai

    n = teacher_cfg.concurrency
    return openai.DefaultAioHttpClient(
        timeout=teacher_cfg.timeout_s,
        limits=httpx2.Limits(max_connections=n, max_keepalive_connections=n))


@dataclass(frozen=True)
class EngineEndpoint:
    """A vLLM engine in a Ray actor of this run (pipeline/teachers/offline_engine.py)."""

    actor: Any

    def __str__(self) -> str:
        return "an offline vLLM engine"

    def connect(self, teacher_cfg: Any, secret: str | None) -> EngineSender:
        return EngineSender(self.actor)


class EngineSender:
    def __init__(self, actor: Any) -> None:
        self.actor = actor

    async def post(self, body: dict[str, Any]) -> Any:
        import ray

        try:
            return await self.actor.chat.remote(body)
        except ray.exceptions.RayTaskError as exc:  # the engine's own error, not Ray's wrapping
            raise exc.cause if isinstance(exc.cause, Exception) else exc from None

    async def close(self) -> None:
        return None


@dataclass(frozen=True)
class AnthropicEndpoint:
    """Anthropic's Messages API (None: Anthropic's URL), through its own SDK
    (pipeline/teachers/anthropic_messages.py)."""

    url: str | None

    def __str__(self) -> str:
        return self.url or "Anthropic's API"

    def connect(self, teacher_cfg: Any, secret: str | None) -> Sender:
        from pipeline.teachers.anthropic_messages import AnthropicSender

        return AnthropicSender(teacher_cfg, self.url, secret)


Endpoint = HTTPEndpoint | EngineEndpoint | AnthropicEndpoint


def as_endpoints(where: str | list[Any] | None) -> list[Endpoint]:
    """Endpoints from what a caller holds: a backend's endpoints, or URLs of OpenAI-compatible
    APIs (None: the provider's default)."""
    items = where if isinstance(where, list) else [where]
    return [e if isinstance(e, HTTPEndpoint | EngineEndpoint | AnthropicEndpoint)
            else HTTPEndpoint(e) for e in items]

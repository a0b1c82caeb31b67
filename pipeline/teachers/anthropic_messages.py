"""A chat-completion request as Anthropic's Messages API takes it, and its answer as the
chat-completion JSON every other part of the build reads (cache, meter, stages).

What the OpenAI-compatible endpoint of Anthropic leaves out is kept: the system prompt goes at
the top level, marked for prompt caching (Anthropic caches only what is marked); extended
thinking is asked when the request carries a budget, and its text comes back beside the answer
(`reasoning_content`), never in it; the usage keeps the prompt tokens read from and written to
the cache apart, so each is priced at its own rate.
"""

from __future__ import annotations

from typing import Any

# Anthropic's stop reasons as chat-completion finish reasons (`length` is what the filter
# rejects as truncated).
FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length",
          "refusal": "content_filter", "pause_turn": "stop", "tool_use": "tool_calls"}


def to_params(body: dict[str, Any], cache_prompt: bool) -> dict[str, Any]:
    """The Messages API parameters of a chat-completion request body (as the cache keys it)."""
    system = "\n\n".join(m["content"] for m in body["messages"] if m["role"] == "system")
    params: dict[str, Any] = {
        "model": body["model"],
        "max_tokens": body.get("max_completion_tokens") or body.get("max_tokens"),
        "messages": [{"role": m["role"], "content": m["content"]}
                     for m in body["messages"] if m["role"] != "system"]}
    if system:
        block: dict[str, Any] = {"type": "text", "text": system}
        if cache_prompt:  # the judge prompt's instructions: the same on every request
            block["cache_control"] = {"type": "ephemeral"}
        params["system"] = [block]
    for name in ("temperature", "top_p", "thinking"):
        if body.get(name) is not None:
            params[name] = body[name]
    return params


def to_completion(message: dict[str, Any]) -> dict[str, Any]:
    """A Messages API answer (a `Message` as a dict) as chat-completion JSON. `prompt_tokens`
    counts every prompt token, the cached ones too, as OpenAI's usage does."""
    blocks = message.get("content") or []
    text = "".join(b.get("text") or "" for b in blocks if b.get("type") == "text")
    thinking = "\n\n".join(b.get("thinking") or "" for b in blocks if b.get("type") == "thinking")
    usage = message.get("usage") or {}
    read = usage.get("cache_read_input_tokens") or 0
    write = usage.get("cache_creation_input_tokens") or 0
    prompt = (usage.get("input_tokens") or 0) + read + write
    output = usage.get("output_tokens") or 0
    reply: dict[str, Any] = {"role": "assistant", "content": text}
    if thinking:
        reply["reasoning_content"] = thinking
    reason = message.get("stop_reason")
    return {"id": message.get("id"), "object": "chat.completion", "model": message.get("model"),
            "choices": [{"index": 0, "finish_reason": FINISH.get(reason, reason),
                         "message": reply}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": output,
                      "total_tokens": prompt + output,
                      "prompt_tokens_details": {"cached_tokens": read,
                                                "cache_write_tokens": write}}}


class AnthropicSender:
    """Posts a chat-completion body to the Messages API through the `anthropic` SDK. Retries
    are the client's (pipeline/teachers/client.py), as for every sender: a 429 or 529 must pause
    every worker, not just one."""

    def __init__(self, teacher_cfg: Any, url: str | None, secret: str | None) -> None:
        import anthropic

        self.client = anthropic.AsyncAnthropic(base_url=url, api_key=secret or "unused",
                                               timeout=teacher_cfg.timeout_s, max_retries=0)
        self.cache_prompt = teacher_cfg.cache_prompt

    async def post(self, body: dict[str, Any]) -> Any:
        message = await self.client.messages.create(**to_params(body, self.cache_prompt))
        return to_completion(message.model_dump())

    async def close(self) -> None:
        await self.client.close()

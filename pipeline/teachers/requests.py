"""What a teacher is asked, and what asking may cost: the request (and so its cache key) of
a conversation, its prompt tokens as the teacher counts them, and its worst case for the cap.

Read by the client, the Batch API jobs, the stages (which requests the cache cannot answer)
and the estimates; it sends nothing.
"""

from __future__ import annotations

from typing import Any

from pipeline.rules.verdict import trace_regex
from pipeline.teachers.cache import ResponseCache, request_key
from pipeline.teachers.model_identity import checkpoint_identity
from pipeline.teachers.prices import price_usd
from pipeline.teachers.teacher_config import kind_of

# Providers' tokenizers are not all public: without `teacher.tokenizer` a prompt is estimated
# as characters / 4 (TPM budget and `build --estimate`). That is an estimate, not a bound: code,
# numbers and non-Latin text take more tokens. The cost cap reserves a bound instead.
CHARS_PER_TOKEN = 4
# Tokens a chat format may add around each message, and before the reply, beyond the text;
# OpenAI's formats add 3-4 per message and 3 for the reply.
MESSAGE_OVERHEAD_TOKENS = 8


def prompt_chars(messages: list[dict[str, str]]) -> int:
    return sum(len(m["content"]) for m in messages)


def tokenizer_name(teacher_cfg: Any) -> str | None:
    """The tokenizer that counts this teacher's prompt tokens: `teacher.tokenizer`, else the
    local model's own; None: characters / 4."""
    if teacher_cfg.tokenizer:
        return teacher_cfg.tokenizer
    if kind_of(teacher_cfg).serves_checkpoint:
        from pipeline.teachers.tokenizers import local_model_dir

        return teacher_cfg.checkpoint or local_model_dir(teacher_cfg.model_dir)
    return None


def prompt_tokens(teacher_cfg: Any, messages: list[dict[str, str]]) -> int:
    """Prompt tokens as the teacher counts them where its tokenizer is known, else estimated."""
    name = tokenizer_name(teacher_cfg)
    if name is None:
        return prompt_chars(messages) // CHARS_PER_TOKEN
    from pipeline.teachers.tokenizers import chat_tokens, load_tokenizer

    return chat_tokens(load_tokenizer(name, "teacher.tokenizer"), messages, generation_prompt=True)


def prompt_token_bound(teacher_cfg: Any, messages: list[dict[str, str]], counted: int) -> int:
    """The most prompt tokens the provider can bill: `counted` (`prompt_tokens`) where the
    tokenizer is known, else the text's UTF-8 bytes (a byte-level tokenizer, as every current
    API model has, never makes more tokens than bytes), plus the chat format's overhead per
    message and before the reply."""
    if tokenizer_name(teacher_cfg) is not None:
        text = counted
    else:
        text = sum(len(m["content"].encode("utf-8", "surrogatepass")) for m in messages)
    return text + MESSAGE_OVERHEAD_TOKENS * (len(messages) + 1)


def worst_case(teacher_cfg: Any, messages: list[dict[str, str]]) -> tuple[int, float]:
    """A request's estimated prompt tokens (for the TPM budget) and the most it can cost (the
    bound of its prompt and `max_tokens`, for the cap). Counting costs CPU: the prompt is
    counted once, and only when a TPM budget or a cost cap needs it."""
    capped = teacher_cfg.max_cost_usd is not None
    counted = prompt_tokens(teacher_cfg, messages) if teacher_cfg.tpm or capped else 0
    estimate = counted if teacher_cfg.tpm else 0
    bound = prompt_token_bound(teacher_cfg, messages, counted) if capped else estimate
    return estimate, price_usd(teacher_cfg, bound, teacher_cfg.max_tokens)


# In the cache key, never sent: the sample index (always 0: one answer per request; kept so the
# keys of caches written so far stay valid) and the self-hosted checkpoint's identity.
KEY_ONLY = ("sample", "checkpoint")


def request_for(teacher_cfg: Any, messages: list[dict[str, str]]) -> dict[str, Any]:
    """Everything that changes the answer, and so the cache key. Never the endpoint or key."""
    req: dict[str, Any] = {"model": teacher_cfg.model, "messages": messages,
                           "max_completion_tokens": teacher_cfg.max_tokens, "sample": 0}
    checkpoint = checkpoint_identity(teacher_cfg)
    if checkpoint is not None:  # the weights behind a self-hosted model's name
        req["checkpoint"] = checkpoint
    for name in ("temperature", "top_p", "seed"):
        value = getattr(teacher_cfg, name)
        if value is not None:
            req[name] = value
    if teacher_cfg.guided_format:
        req["structured_outputs"] = {"regex": trace_regex()}
    return req | kind_of(teacher_cfg).request_extras(teacher_cfg)


def uncached(teacher_cfg: Any, conversations: list[list[dict[str, str]]]
             ) -> dict[str, dict[str, Any]]:
    """The requests the cache cannot answer, by key (each once): what asking would pay for."""
    cache = ResponseCache(teacher_cfg.cache_dir)
    requests = {request_key(r): r for r in (request_for(teacher_cfg, c) for c in conversations)}
    return {k: r for k, r in requests.items() if k not in cache}

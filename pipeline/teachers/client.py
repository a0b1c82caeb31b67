"""Chat completions, bounded in concurrency, behind the cache.

The same code asks OpenAI, a vLLM server (the embedded local teacher is one), any compatible
endpoint, and vLLM engines in Ray actors: each request goes out through the sender of one of
the backend's endpoints (pipeline/teachers/transport.py). Transient failures (429, 5xx,
time-outs) are retried with backoff; what still fails comes back as an error string, never as
an exception.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import json
import logging
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from omegaconf import DictConfig, OmegaConf

from pipeline.teachers.cache import (
    RECORD_FIELDS,
    BatchedWriter,
    ResponseCache,
    completion_record,
    request_key,
)
from pipeline.teachers.prices import price_usd, record_cost
from pipeline.teachers.rate_limit import SharedBudget
from pipeline.teachers.requests import KEY_ONLY, request_for, worst_case
from pipeline.teachers.spend import MeterHandle, not_sent_error
from pipeline.teachers.teacher_config import secret
from pipeline.teachers.transport import Sender, as_endpoints

# The SDKs are imported where a request is sent (transport.py) or an error read: a stage whose
# answers are all cached runs in worker processes that never need them (importing one costs
# about a second per process).

log = logging.getLogger("rubricforge.teacher")

# What became of each request asked before its stage ran: None (answered, in the cache) or the
# error its row gets.
Answered = dict[str, str | None]


@dataclass
class TeacherResult:
    content: str | None
    finish_reason: str | None
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    cached: bool
    error: str | None
    # of prompt_tokens: read from and written to the provider's prompt cache
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0


def from_record(record: dict[str, Any], cached: bool) -> TeacherResult:
    """An answer as the stages see it. An empty answer was paid for and is cached like any
    other, but it is no trace: the row gets an error that says so."""
    empty = not record["content"] and record["finish_reason"] != "length"
    error = f"empty answer (finish_reason {record['finish_reason']})" if empty else None
    return TeacherResult(*(record[f] for f in RECORD_FIELDS), cached=cached, error=error,
                         cache_read_tokens=record.get("cache_read_tokens", 0),
                         cache_write_tokens=record.get("cache_write_tokens", 0))


def _failure_kind(exc: Exception) -> str | None:
    """"rate" for a rate limit (429), "transient" for what may pass (a connection lost or timed
    out, a 5xx, Anthropic's 529 overloaded, a body that is not JSON), None for what trying again
    cannot help (a 400, say). Both SDKs name their errors alike; each is read only when one of
    its errors is in hand."""
    if isinstance(exc, json.JSONDecodeError):  # a gateway in trouble, as a 5xx is
        return "transient"
    sdk_name = type(exc).__module__.split(".")[0]
    if sdk_name not in ("openai", "anthropic"):
        return None
    sdk = importlib.import_module(sdk_name)
    if isinstance(exc, sdk.RateLimitError):
        return "rate"
    if isinstance(exc, sdk.APIConnectionError | sdk.InternalServerError):
        return "transient"
    return None


def _retry_pause(exc: Exception, attempt: int) -> float | None:
    """Seconds to wait before trying again, or None when trying again cannot help. 429s wait
    what the server's Retry-After says; the rest back off exponentially, with jitter so that
    workers do not retry in step."""
    if _failure_kind(exc) is None:
        return None
    backoff = min(60.0, 0.5 * 2 ** (attempt - 1)) * random.uniform(0.5, 1.5)
    response = getattr(exc, "response", None)
    header = response.headers.get("retry-after") if response is not None else None
    try:
        return max(0.0, float(header)) if header is not None else backoff
    except ValueError:  # an HTTP date: rare; back off instead
        return backoff


class TeacherClient:
    """Asks one teacher; with several endpoints (replicas of a local model) requests take
    turns among them."""

    def __init__(self, teacher_cfg: Any, where: str | list[Any] | None, meter: Any = None,
                 stage: str = "teacher", answered: Answered | None = None) -> None:
        # a plain dataclass: DictConfig lookups cost CPU on every request
        self.cfg = OmegaConf.to_object(teacher_cfg) if isinstance(teacher_cfg, DictConfig) \
            else teacher_cfg
        # the backend's endpoints (pipeline/teachers/transport.py), or URLs
        self.endpoints = as_endpoints(where)
        self.cache = ResponseCache(teacher_cfg.cache_dir)
        # The build's meter (a Ray actor) when given; else this client counts on its own.
        self.meter = MeterHandle(stage, meter, teacher_cfg.max_cost_usd)
        # The keys answered this run before the stage read them (pipeline/teachers/answering.py)
        self.answered = answered or {}
        self.other_models: set[str] = set()

    def complete_all(self, conversations: list[list[dict[str, str]]]) -> list[TeacherResult]:
        """Answer every conversation: what was answered before the stage from the cache (or its
        error), cached answers from the cache, the rest concurrently."""
        requests = [request_for(self.cfg, c) for c in conversations]
        keys = [request_key(r) for r in requests]
        # Identical requests are asked once; the other rows get the same answer, unpaid.
        unique = {k: r for k, r in zip(keys, requests, strict=True)}
        by_key = {k: self._answered_result(k) for k in unique if k in self.answered}
        todo = {k: r for k, r in unique.items() if k not in by_key}
        hits = {k: self.cache.get(k) for k in todo}  # cached answers need no client
        by_key |= {k: from_record(h, cached=True) for k, h in hits.items() if h is not None}
        self.meter.note_cached(sum(h is not None for h in hits.values()))
        todo = {k: r for k, r in todo.items() if hits[k] is None}
        if todo and not self.endpoints:
            # the backend answered this stage's requests before it ran (or the cache did, and
            # nothing was started): one that turns up now was not among them
            by_key |= {k: TeacherResult(None, None, 0, 0, 0.0, False,
                                        "not asked: not among the requests answered before "
                                        "the stage ran (did the cache change?); rerun")
                       for k in todo}
        elif todo:
            by_key |= dict(zip(todo, asyncio.run(self._ask_all(todo)), strict=True))
        seen: set[str] = set()
        out = []
        for k in keys:
            result = by_key[k]
            out.append(result if k not in seen else dataclasses.replace(result, cached=True))
            seen.add(k)
        return out

    def answer_stream(self, batches: Iterator[pa.Table]) -> Answered:
        """Answer a stream of `request_table` batches into the cache, keeping
        `teacher.concurrency` requests in flight from the first to the last: a slow answer
        holds up only its own slot, never a batch. Returns key -> error (None: in the cache)."""
        return asyncio.run(self._stream(batches))

    def _senders(self) -> list[Sender]:
        self.budget = SharedBudget(self.cfg)
        self.writer = BatchedWriter(self.cache)  # (of this event loop)
        key = secret(self.cfg)
        return [e.connect(self.cfg, key) for e in self.endpoints]

    async def _stream(self, batches: Iterator[pa.Table]) -> Answered:
        senders = self._senders()
        limit = asyncio.Semaphore(self.cfg.concurrency)
        # requests read ahead of a free slot: enough that a slot never waits for the reading
        ahead = asyncio.Semaphore(2 * self.cfg.concurrency)
        out: Answered = {}
        running: set[asyncio.Task[None]] = set()

        async def one(i: int, key: str, request: dict[str, Any]) -> None:
            try:
                result = await self._one(senders[i % len(senders)], limit, key, request)
                out[key] = result.error
            finally:
                ahead.release()

        try:
            i = 0
            # the next batch is fetched off the event loop (from the object store, maybe remote)
            while (batch := await asyncio.to_thread(next, batches, None)) is not None:
                for key, request in zip(batch.column("key").to_pylist(),
                                        batch.column("request").to_pylist(), strict=True):
                    await ahead.acquire()
                    task = asyncio.create_task(one(i, key, json.loads(request)))
                    running.add(task)
                    task.add_done_callback(running.discard)
                    i += 1
            await asyncio.gather(*running)
        finally:
            for sender in senders:
                await sender.close()
        return out

    async def _ask_all(self, unique: dict[str, dict[str, Any]]) -> list[TeacherResult]:
        senders = self._senders()
        limit = asyncio.Semaphore(self.cfg.concurrency)
        try:
            # complete_all has just read the cache for these keys
            return await asyncio.gather(*(
                self._one(senders[i % len(senders)], limit, k, r, checked=True)
                for i, (k, r) in enumerate(unique.items())))
        finally:
            for sender in senders:
                await sender.close()

    def _answered_result(self, key: str) -> TeacherResult:
        """A request answered this run before the stage ran: its answer, or why there is none."""
        hit = self.cache.get(key)
        if hit is not None:
            return from_record(hit, cached=False)
        return TeacherResult(None, None, 0, 0, 0.0, False,
                             self.answered[key] or "answered but not in the cache: rerun to ask again")

    async def _one(self, sender: Sender, limit: asyncio.Semaphore, key: str,
                   req: dict[str, Any], checked: bool = False) -> TeacherResult:
        """Ask one request (unless the cache has it: `checked` when the caller just looked) and
        cache the answer before returning it."""
        if not checked and (hit := self.cache.get(key)) is not None:
            self.meter.note_cached(1)
            return from_record(hit, cached=True)
        # structured_outputs (guided decoding) is a vLLM extension of the body, sent as it is
        body = {k: v for k, v in req.items() if k not in KEY_ONLY}
        estimate, worst = worst_case(self.cfg, req["messages"])
        tokens = estimate + self.cfg.max_tokens
        async with limit:
            # Admitted inside the concurrency limit: only requests really in flight reserve
            # their worst case against the cap.
            answer = await self.meter.admit(worst)
            if answer != "send":
                return TeacherResult(None, None, 0, 0, 0.0, False,
                                     not_sent_error(self.cfg, answer))
            start = time.monotonic()
            for attempt in range(1, self.cfg.max_attempts + 1):
                await self.budget.wait(tokens)
                sent = time.monotonic()
                try:
                    resp = await sender.post(body)
                    break
                except Exception as exc:  # API errors and broken bodies alike end as a row's error
                    pause = _retry_pause(exc, attempt)
                    if pause is None or attempt == self.cfg.max_attempts:
                        # a failed request may still have been billed: count its worst case
                        self.meter.settle(worst, self._billed(exc, worst), 0, 0, True, attempt - 1)
                        return self._failed(exc, time.monotonic() - start)
                    if _failure_kind(exc) == "rate":
                        await self.budget.throttle(pause)
                    await asyncio.sleep(pause)
            latency = time.monotonic() - sent
            usage = resp.get("usage") if isinstance(resp, dict) else None
            if not isinstance(resp, dict) or not resp.get("choices"):
                cost = (price_usd(self.cfg, usage.get("prompt_tokens") or 0,
                                  usage.get("completion_tokens") or 0) if usage else worst)
                self.meter.settle(worst, cost, 0, 0, True, attempt - 1)
                return self._failed(ValueError("response without choices"), latency)
            record = completion_record(resp, round(latency, 3))
            cost = record_cost(self.cfg, record) if usage else worst
            self._check_model(resp.get("model"))
            # paid for: never ask again, even when it is empty; fsynced off the event loop.
            # The slot is held until the answer is on disk, so that what a kill can lose (and
            # a rerun pay again) is at most `concurrency` requests: the batched writer keeps
            # answers a few ms before it syncs them
            await self.writer.put(key, record)
        result = from_record(record, cached=False)
        self.meter.settle(worst, cost, result.prompt_tokens, result.completion_tokens,
                          bool(result.error), attempt - 1, result.cache_read_tokens,
                          result.cache_write_tokens)
        return result

    def _check_model(self, reported: str | None) -> None:
        """Say once when the API answers with another model than the one asked for (a dated
        snapshot of it, `gpt-4o` answered by `gpt-4o-2024-08-06`, is the same model)."""
        asked = self.cfg.model
        if reported and not reported.startswith(asked) and reported not in self.other_models:
            self.other_models.add(reported)
            log.warning("teacher %s at %s answered as model %r: its answers are cached under %r; "
                        "check teacher.model and teacher.base_url", asked, self.endpoints[0],
                        reported, asked)

    @staticmethod
    def _billed(exc: Exception, worst: float) -> float:
        """Refusals (4xx) are not billed; a time-out or a 5xx may have been."""
        status = getattr(exc, "status_code", None)
        return 0.0 if status is not None and status < 500 else worst

    def _failed(self, exc: Exception, latency: float) -> TeacherResult:
        """A one-line error for the row; the key never appears, even if a server echoes it."""
        status = getattr(exc, "status_code", None)
        message = str(exc).splitlines()[0][:300] if str(exc) else ""
        key = secret(self.cfg)
        if key:
            message = message.replace(key, "***")
        detail = f"{type(exc).__name__}{f' {status}' if status else ''}: {message}"
        return TeacherResult(None, None, 0, 0, round(latency, 3), False, detail)


def ask(who: str, teacher_cfg: Any, base_url: str | list[str] | None,
        conversations: list[list[dict[str, str]]], meter: Any = None,
        answered: Answered | None = None) -> list[TeacherResult]:
    """Answer conversations for stage `who` and log what it cost: the common path of every
    stage that asks a teacher."""
    if not conversations:
        return []
    start = time.monotonic()
    results = TeacherClient(teacher_cfg, base_url, meter, who, answered).complete_all(
        conversations)
    asked = [r for r in results if not r.cached]
    # per batch, on a worker: the build's progress display has the rates of what was sent
    log.info("%s: teacher %s: %d rows in %.1fs, %d answered this run, %d completion tokens, "
             "%d errors", who, teacher_cfg.model, len(results), time.monotonic() - start,
             len(asked), sum(r.completion_tokens for r in asked),
             sum(bool(r.error) for r in results))
    return results


# The columns a teacher answer fills, named as in pipeline/engine/schema.py.
RESULT_COLUMNS = ("trace", "teacher_model", "finish_reason", "prompt_tokens", "completion_tokens",
                  "cache_read_tokens", "latency_s", "cached", "teacher_error")


def result_columns(result: TeacherResult, model: str) -> dict[str, Any]:
    return {"trace": result.content, "teacher_model": model, "finish_reason": result.finish_reason,
            "prompt_tokens": result.prompt_tokens, "completion_tokens": result.completion_tokens,
            "cache_read_tokens": result.cache_read_tokens, "latency_s": result.latency_s,
            "cached": result.cached, "teacher_error": result.error}

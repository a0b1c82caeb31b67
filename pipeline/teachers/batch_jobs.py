"""How a provider's batch API answers a pass: half the price, answers within the completion
window (up to 24 h) instead of seconds. OpenAI's Batch API (`teacher=openai_batch`) and
Anthropic's Message Batches (`teacher=anthropic_batch`) share everything here but the calls.

The requests the cache cannot answer go in as few jobs as the provider's limits allow (OpenAI:
50,000 requests and 200 MB a file; Anthropic: 100,000 requests and 256 MB a batch). Before it
waits, it saves each job's id and the cache keys it holds under `<cache_dir>/batches/<job
id>.json`, so a build that is stopped or crashes picks the jobs up on rerun instead of paying
for the same requests again. It polls until the jobs end, caches every answered request, and
sends those that failed, expired or were canceled again in new jobs, each request in at most
`max_attempts` jobs; what still fails becomes the row's error, with the provider's reason. A
request the provider refused as invalid, or a job it refused outright (a bad file), is not
retried.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from typing import Any, ClassVar

from pipeline.engine import storage
from pipeline.teachers.cache import ResponseCache, completion_record
from pipeline.teachers.prices import record_cost
from pipeline.teachers.requests import KEY_ONLY, worst_case
from pipeline.teachers.spend import MeterHandle, not_sent_error
from pipeline.teachers.teacher_config import secret

log = logging.getLogger("rubricforge.teacher")


@dataclass
class Outcome:
    """One request's result in a job: its chat-completion JSON, or why there is none and
    whether another job may still answer it."""

    key: str
    completion: dict[str, Any] | None = None
    error: str = ""
    retriable: bool = True


def pending_requests(requests: Any) -> dict[str, dict[str, Any]]:
    """A pass's uncached requests (a Ray Dataset of `request_table` rows) by cache key, on the
    driver: a batch job is submitted from one place."""
    return {k: json.loads(r) for batch in requests.iter_batches(batch_format="pyarrow",
                                                                 batch_size=None)
            for k, r in zip(batch.column("key").to_pylist(),
                            batch.column("request").to_pylist(), strict=True)}


def answer_in_jobs(requests: dict[str, dict[str, Any]], t: Any, stage: str, meter: Any,
                   provider: type[BatchJobs] | None = None) -> dict[str, str | None]:
    """Answer a pass's uncached requests (cache key -> request) into the cache through batch
    jobs of `provider` (OpenAI's by default); returns key -> error (None: answered). Ctrl-C
    leaves the jobs running at the provider: the rerun waits for them instead of submitting
    them again."""
    jobs_of = provider or OpenAIJobs

    async def run() -> dict[str, str]:
        client = jobs_of.client(t)
        try:
            return await jobs_of(t, client, ResponseCache(t.cache_dir),
                                 MeterHandle(stage, meter, t.max_cost_usd)).answer(requests)
        finally:
            await client.close()

    try:
        errors = asyncio.run(run())
    except KeyboardInterrupt:
        log.warning("interrupted: batch jobs already submitted keep running at the provider; "
                    "rerun to wait for them (nothing is submitted twice)")
        raise
    return {k: errors.get(k) for k in requests}


class BatchJobs:
    """Answers requests through batch jobs, into the cache; returns the failures' errors.
    A provider's subclass says how a request goes into a job, and how a job is created, waited
    for and read."""

    # Which provider's jobs a saved job file holds (a cache may hold both kinds).
    provider: ClassVar[str]
    # What one job may hold (the provider's limits).
    max_lines: ClassVar[int]
    max_bytes: ClassVar[int]

    def __init__(self, cfg: Any, client: Any, cache: ResponseCache, meter: MeterHandle) -> None:
        self.cfg, self.client, self.cache, self.meter = cfg, client, cache, meter
        self.jobs_dir = storage.join(cache.root, "batches")

    # -- what a provider says ------------------------------------------------------------------

    @staticmethod
    def client(t: Any) -> Any:
        """The provider's SDK client for teacher setting `t` (closed with `close()`)."""
        raise NotImplementedError

    def entry(self, key: str, body: dict[str, Any]) -> dict[str, Any]:
        """One request as the job holds it."""
        raise NotImplementedError

    async def create(self, entries: list[dict[str, Any]]) -> dict[str, Any]:
        """Submit a job; returns what a rerun needs to find it (its `id`, at least)."""
        raise NotImplementedError

    async def ended(self, job: dict[str, Any]) -> Any | None:
        """The job as the provider reports it once it has ended, else None."""
        raise NotImplementedError

    async def outcomes(self, job: dict[str, Any], ended: Any) -> tuple[list[Outcome], str]:
        """Each request's result, and the reason the job itself failed ("" when it did not)."""
        raise NotImplementedError

    # -- the same for every provider -----------------------------------------------------------

    async def answer(self, requests: dict[str, dict[str, Any]]) -> dict[str, str]:
        """Answer `requests` (cache key -> request) into the cache. Returns key -> error for
        the ones that could not be answered."""
        todo = dict(requests)
        errors: dict[str, str] = {}
        # jobs an earlier run left: wait for them, do not pay again
        earlier = [job for job in self._open_jobs() if todo.keys() & set(job["keys"])]
        for job in earlier:
            log.warning("teacher %s: picking up batch job %s of an earlier run (%d requests)",
                        self.cfg.model, job["id"], len(job["keys"]))
        errors |= await self._finish_all(earlier, todo, reserved=False)
        tries = dict.fromkeys(todo, 0)
        rounds = 0
        while ready := {k: r for k, r in todo.items() if tries[k] < self.cfg.max_attempts}:
            rounds += 1
            jobs, refused = await self._submit(ready, rounds)
            for key, answer in refused:
                errors[key] = not_sent_error(self.cfg, answer)
                todo.pop(key)
            if not jobs:
                break
            sent = {k for job in jobs for k in job["keys"]}
            for key in sent:
                tries[key] += 1
            errors = {k: e for k, e in errors.items() if k not in sent}
            errors |= await self._finish_all(jobs, todo, reserved=True)
        return errors | {k: errors.get(k, "not answered") for k in todo}

    async def _finish_all(self, jobs: list[dict[str, Any]], todo: dict[str, dict[str, Any]],
                          reserved: bool) -> dict[str, str]:
        """Wait for `jobs` together; `reserved`: this run reserved their worst case against
        the cost cap (an earlier run's jobs it did not)."""
        parts = await asyncio.gather(*(
            self._finish(job, todo, job["worst_usd"] / len(job["keys"]) if reserved else 0.0)
            for job in jobs))
        return {k: e for part in parts for k, e in part.items()}

    def _open_jobs(self) -> list[dict[str, Any]]:
        jobs = []
        for rel in sorted(storage.files_under(self.jobs_dir)):
            if rel.endswith(".json") and "/" not in rel:
                try:
                    job = json.loads(storage.read_bytes(storage.join(self.jobs_dir, rel)))
                except (OSError, ValueError):
                    continue
                if job.get("provider", "openai") == self.provider:
                    jobs.append(job)
        return jobs

    async def _submit(self, todo: dict[str, dict[str, Any]], round_: int
                      ) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
        """Jobs for the requests the cost cap admits, each within the provider's limits;
        returns them (none: nothing to send) and the keys the meter refused, with why. Where
        the cap has room for some only once these jobs are paid for (their worst case reserved,
        their real cost far less), the rest wait for the next round."""
        lines: list[tuple[str, dict[str, Any], int, float]] = []
        refused = []
        for key, req in todo.items():
            _, cost = worst_case(self.cfg, req["messages"])
            answer = await self.meter.admit(cost, wait=not lines)
            if answer == "wait":
                break
            if answer != "send":
                refused.append((key, answer))
                continue
            body = {k: v for k, v in req.items() if k not in (*KEY_ONLY, "structured_outputs")}
            entry = self.entry(key, body)
            size = len(json.dumps(entry, ensure_ascii=False).encode("utf-8")) + 1
            lines.append((key, entry, size, cost))
        return [await self._submit_one(part, round_) for part in self._parts(lines)], refused

    def _parts(self, lines: list[tuple[str, dict[str, Any], int, float]]
               ) -> list[list[tuple[str, dict[str, Any], int, float]]]:
        """The lines cut into jobs of at most `max_lines` requests and `max_bytes` bytes."""
        parts: list[list[tuple[str, dict[str, Any], int, float]]] = []
        size = 0
        for line in lines:
            if not parts or len(parts[-1]) == self.max_lines or size + line[2] > self.max_bytes:
                parts.append([])
                size = 0
            parts[-1].append(line)
            size += line[2]
        return parts

    async def _submit_one(self, lines: list[tuple[str, dict[str, Any], int, float]],
                          round_: int) -> dict[str, Any]:
        created = await self.create([entry for _, entry, _, _ in lines])
        job = {**created, "provider": self.provider, "keys": [k for k, _, _, _ in lines],
               "round": round_, "worst_usd": sum(c for _, _, _, c in lines),
               "submitted": time.time()}
        storage.write_bytes(storage.join(self.jobs_dir, f"{job['id']}.json"),
                            json.dumps(job).encode())  # saved before waiting: a rerun picks it up
        log.warning("teacher %s: batch job %s submitted (%d requests, round %d)", self.cfg.model,
                    job["id"], len(lines), round_)
        return job

    async def _finish(self, job: dict[str, Any], todo: dict[str, dict[str, Any]],
                      reserved: float) -> dict[str, str]:
        """Wait for the job, cache its answers, and take the answered keys (and those no job
        can answer) out of `todo`. `reserved`: what this run reserved against the cost cap for
        each of its requests."""
        start = time.monotonic()
        while (ended := await self.ended(job)) is None:
            await asyncio.sleep(self.cfg.batch_poll_s)
        outcomes, job_failed = await self.outcomes(job, ended)
        answered, errors = 0, {}
        for o in outcomes:
            if o.key not in job["keys"]:
                continue
            if o.completion is not None and o.completion.get("choices"):
                record = completion_record(o.completion, 0.0)
                self.cache.put(o.key, record)  # paid for: never ask again
                todo.pop(o.key, None)
                answered += 1
                self.meter.settle(reserved, record_cost(self.cfg, record),
                                  record["prompt_tokens"], record["completion_tokens"], False, 0,
                                  record.get("cache_read_tokens", 0),
                                  record.get("cache_write_tokens", 0))
                continue
            errors[o.key] = o.error[:300]
            if not o.retriable:
                todo.pop(o.key, None)
        if job_failed:  # the job itself was refused: retrying cannot help
            for key in job["keys"]:
                if key in todo:
                    errors[key] = f"batch job failed: {job_failed}"[:300]
                    todo.pop(key)
        unanswered = len(job["keys"]) - answered
        for _ in range(unanswered):  # failed requests are not billed
            self.meter.settle(reserved, 0.0, 0, 0, True, 0)
        storage.remove_file(storage.join(self.jobs_dir, f"{job['id']}.json"))
        log.warning("teacher %s: batch job %s ended after %.0fs: %d answered, %d to retry or "
                    "failed", self.cfg.model, job["id"], time.monotonic() - start, answered,
                    unanswered)
        return errors


class OpenAIJobs(BatchJobs):
    """OpenAI's Batch API: a JSON-lines file uploaded, one job on it, output and error files."""

    provider = "openai"
    max_lines = 50_000
    max_bytes = 200 * 2**20
    endpoint = "/v1/chat/completions"

    @staticmethod
    def client(t: Any) -> Any:
        import openai

        return openai.AsyncOpenAI(base_url=t.base_url, api_key=secret(t) or "unused",
                                  timeout=t.timeout_s, max_retries=t.max_attempts)

    def entry(self, key: str, body: dict[str, Any]) -> dict[str, Any]:
        return {"custom_id": key, "method": "POST", "url": self.endpoint, "body": body}

    async def create(self, entries: list[dict[str, Any]]) -> dict[str, Any]:
        data = "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in entries)
        upload = await self.client.files.create(file=("requests.jsonl", data.encode("utf-8")),
                                                purpose="batch")
        batch = await self.client.batches.create(input_file_id=upload.id,
                                                 endpoint=self.endpoint, completion_window="24h")
        return {"id": batch.id, "input_file_id": upload.id}

    async def ended(self, job: dict[str, Any]) -> Any | None:
        batch = await self.client.batches.retrieve(job["id"])
        return batch if batch.status in ("completed", "failed", "expired", "cancelled") else None

    async def outcomes(self, job: dict[str, Any], ended: Any) -> tuple[list[Outcome], str]:
        out = []
        for line in await self._lines(ended.output_file_id) + await self._lines(
                ended.error_file_id):
            response = line.get("response") or {}
            if response.get("status_code") == 200:
                out.append(Outcome(line.get("custom_id"), response.get("body")))
                continue
            err = line.get("error") or (response.get("body") or {}).get("error") or {}
            out.append(Outcome(line.get("custom_id"), error=(
                f"batch line {response.get('status_code')}: {err.get('message') or 'failed'}")))
        failed = ""
        if ended.status == "failed":
            reasons = "; ".join(e.message or "" for e in (ended.errors.data if ended.errors
                                                          else []))
            failed = reasons or "no reason given"
        return out, failed

    async def _lines(self, file_id: str | None) -> list[dict[str, Any]]:
        if not file_id:
            return []
        content = await self.client.files.content(file_id)
        return [json.loads(x) for x in content.text.splitlines() if x.strip()]


class AnthropicJobs(BatchJobs):
    """Anthropic's Message Batches: the requests in the create call, results as JSON lines."""

    provider = "anthropic"
    max_lines = 100_000
    max_bytes = 256 * 2**20

    @staticmethod
    def client(t: Any) -> Any:
        import anthropic

        return anthropic.AsyncAnthropic(base_url=t.base_url, api_key=secret(t) or "unused",
                                        timeout=t.timeout_s, max_retries=t.max_attempts)

    def entry(self, key: str, body: dict[str, Any]) -> dict[str, Any]:
        from pipeline.teachers.anthropic_messages import to_params

        return {"custom_id": key, "params": to_params(body, self.cfg.cache_prompt)}

    async def create(self, entries: list[dict[str, Any]]) -> dict[str, Any]:
        batch = await self.client.messages.batches.create(requests=entries)
        return {"id": batch.id}

    async def ended(self, job: dict[str, Any]) -> Any | None:
        batch = await self.client.messages.batches.retrieve(job["id"])
        return batch if batch.processing_status == "ended" else None

    async def outcomes(self, job: dict[str, Any], ended: Any) -> tuple[list[Outcome], str]:
        from pipeline.teachers.anthropic_messages import to_completion

        out = []
        async for item in await self.client.messages.batches.results(job["id"]):
            result = item.result
            if result.type == "succeeded":
                out.append(Outcome(item.custom_id, to_completion(result.message.model_dump())))
            elif result.type == "errored":
                err = result.error.error
                # a request the API calls invalid fails the same way in any job
                out.append(Outcome(item.custom_id, error=f"batch request errored: {err.type}: "
                                   f"{err.message}", retriable=err.type != "invalid_request_error"))
            else:  # canceled, or expired before the batch ended (24 h)
                out.append(Outcome(item.custom_id, error=f"batch request {result.type}"))
        return out, ""

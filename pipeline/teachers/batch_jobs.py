"""How the OpenAI Batch API answers a pass (`teacher=openai_batch`): half the price, answers
within the completion window (up to 24 h) instead of seconds.

The requests the cache cannot answer go as JSON-lines files, one batch job each, as few as the
API's limits allow (50,000 requests and 200 MB a file). Before it waits, it saves each job's id
and the cache keys it holds under `<cache_dir>/batches/<job id>.json`, so a build that is
stopped or crashes picks the jobs up on rerun instead of paying for the same requests again. It
polls until the jobs end, caches every answered line, and sends the lines that failed or expired
again in new jobs, each request in at most `max_attempts` jobs; what still fails becomes the
row's error. A job the API refused outright (a bad file) is not retried: its error is every
row's.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import openai

from pipeline.engine import storage
from pipeline.teachers.cache import ResponseCache, completion_record
from pipeline.teachers.prices import record_cost
from pipeline.teachers.requests import KEY_ONLY, worst_case
from pipeline.teachers.spend import MeterHandle, not_sent_error
from pipeline.teachers.teacher_config import secret
from pipeline.teachers.transport import HTTPSender

log = logging.getLogger("rubricforge.teacher")
ENDPOINT = "/v1/chat/completions"
DONE = ("completed", "failed", "expired", "cancelled")


def answer_in_jobs(requests: dict[str, dict[str, Any]], t: Any, stage: str, meter: Any
                   ) -> dict[str, str | None]:
    """Answer a pass's uncached requests (cache key -> request) into the cache through batch
    jobs; returns key -> error (None: answered). Ctrl-C leaves the jobs running at the
    provider: the rerun waits for them instead of submitting them again."""
    async def run() -> dict[str, str]:
        sender = HTTPSender(t, t.base_url, secret(t))
        try:
            return await BatchJobs(t, sender.client, ResponseCache(t.cache_dir),
                                   MeterHandle(stage, meter, t.max_cost_usd)).answer(requests)
        finally:
            await sender.close()

    try:
        errors = asyncio.run(run())
    except KeyboardInterrupt:
        log.warning("interrupted: batch jobs already submitted keep running at the provider; "
                    "rerun to wait for them (nothing is submitted twice)")
        raise
    return {k: errors.get(k) for k in requests}


class BatchJobs:
    """Answers requests through batch jobs, into the cache; returns the failures' errors."""

    # What one job's input file may hold (the Batch API's limits).
    max_lines = 50_000
    max_bytes = 200 * 2**20

    def __init__(self, cfg: Any, client: openai.AsyncOpenAI, cache: ResponseCache,
                 meter: MeterHandle) -> None:
        self.cfg, self.client, self.cache, self.meter = cfg, client, cache, meter
        self.jobs_dir = storage.join(cache.root, "batches")

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
                    jobs.append(json.loads(storage.read_bytes(storage.join(self.jobs_dir, rel))))
                except (OSError, ValueError):
                    continue
        return jobs

    async def _submit(self, todo: dict[str, dict[str, Any]], round_: int
                      ) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
        """Jobs for the requests the cost cap admits, each within the API's limits; returns
        them (none: nothing to send) and the keys the meter refused, with why. Where the cap
        has room for some only once these jobs are paid for (their worst case reserved, their
        real cost far less), the rest wait for the next round."""
        lines: list[tuple[str, bytes, float]] = []
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
            line = json.dumps({"custom_id": key, "method": "POST", "url": ENDPOINT,
                               "body": body}, ensure_ascii=False) + "\n"
            lines.append((key, line.encode("utf-8"), cost))
        return [await self._submit_one(part, round_) for part in self._parts(lines)], refused

    def _parts(self, lines: list[tuple[str, bytes, float]]
               ) -> list[list[tuple[str, bytes, float]]]:
        """The lines cut into files of at most `max_lines` lines and `max_bytes` bytes."""
        parts: list[list[tuple[str, bytes, float]]] = []
        size = 0
        for line in lines:
            if not parts or len(parts[-1]) == self.max_lines or size + len(line[1]) > self.max_bytes:
                parts.append([])
                size = 0
            parts[-1].append(line)
            size += len(line[1])
        return parts

    async def _submit_one(self, lines: list[tuple[str, bytes, float]], round_: int
                          ) -> dict[str, Any]:
        upload = await self.client.files.create(
            file=("requests.jsonl", b"".join(data for _, data, _ in lines)), purpose="batch")
        batch = await self.client.batches.create(input_file_id=upload.id, endpoint=ENDPOINT,
                                                 completion_window="24h")
        job = {"id": batch.id, "input_file_id": upload.id, "keys": [k for k, _, _ in lines],
               "round": round_, "worst_usd": sum(c for _, _, c in lines),
               "submitted": time.time()}
        storage.write_bytes(storage.join(self.jobs_dir, f"{batch.id}.json"),
                            json.dumps(job).encode())  # saved before waiting: a rerun picks it up
        log.warning("teacher %s: batch job %s submitted (%d requests, round %d)", self.cfg.model,
                    batch.id, len(lines), round_)
        return job

    async def _finish(self, job: dict[str, Any], todo: dict[str, dict[str, Any]],
                      reserved: float) -> dict[str, str]:
        """Wait for the job, cache its answers, and take the answered keys out of `todo`.
        `reserved`: what this run reserved against the cost cap for each of its requests."""
        start = time.monotonic()
        while True:
            batch = await self.client.batches.retrieve(job["id"])
            if batch.status in DONE:
                break
            await asyncio.sleep(self.cfg.batch_poll_s)
        answered, errors = 0, {}
        for line in await self._lines(batch.output_file_id) + await self._lines(batch.error_file_id):
            key, response = line.get("custom_id"), line.get("response") or {}
            if key not in job["keys"]:
                continue
            if response.get("status_code") == 200 and (response.get("body") or {}).get("choices"):
                record = completion_record(response["body"], 0.0)
                self.cache.put(key, record)  # paid for: never ask again
                todo.pop(key, None)
                answered += 1
                self.meter.settle(reserved, record_cost(self.cfg, record),
                                  record["prompt_tokens"], record["completion_tokens"], False, 0,
                                  record.get("cache_read_tokens", 0),
                                  record.get("cache_write_tokens", 0))
            else:
                err = line.get("error") or (response.get("body") or {}).get("error") or {}
                errors[key] = (f"batch line {response.get('status_code')}: "
                               f"{(err.get('message') or 'failed')[:200]}")
        if batch.status == "failed":  # the job itself was refused: retrying cannot help
            reason = "; ".join(e.message or "" for e in (batch.errors.data if batch.errors else []))
            for key in job["keys"]:
                if key in todo:
                    errors[key] = f"batch job failed: {reason or 'no reason given'}"[:300]
                    todo.pop(key)
        unanswered = len(job["keys"]) - answered
        for _ in range(unanswered):  # failed lines are not billed
            self.meter.settle(reserved, 0.0, 0, 0, True, 0)
        storage.remove_file(storage.join(self.jobs_dir, f"{job['id']}.json"))
        log.warning("teacher %s: batch job %s %s after %.0fs: %d answered, %d to retry or failed",
                    self.cfg.model, job["id"], batch.status, time.monotonic() - start, answered,
                    unanswered)
        return errors

    async def _lines(self, file_id: str | None) -> list[dict[str, Any]]:
        if not file_id:
            return []
        content = await self.client.files.content(file_id)
        return [json.loads(x) for x in content.text.splitlines() if x.strip()]

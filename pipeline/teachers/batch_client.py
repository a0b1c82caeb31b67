"""The OpenAI Batch API as a teacher backend (`teacher=openai_batch`): half the price, answers
within the completion window (up to 24 h) instead of seconds.

The requests the cache cannot answer go as one JSON-lines file and one batch job. Before the
client waits, it saves the job's id and the cache keys it holds under
`<cache_dir>/batches/<job id>.json`, so a build that is stopped or crashes picks the job up on
rerun instead of paying for the same requests again. It polls until the job ends, caches every
answered line, and sends the lines that failed or expired again in a new job, up to
`max_attempts` jobs; what still fails becomes the row's error. A job the API refused outright
(a bad file) is not retried: its error is every row's.
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
from pipeline.teachers.requests import KEY_ONLY, worst_case
from pipeline.teachers.spend import MeterHandle, not_sent_error, price_usd

log = logging.getLogger("rubricforge.teacher")
ENDPOINT = "/v1/chat/completions"
DONE = ("completed", "failed", "expired", "cancelled")


class BatchJobs:
    """Answers requests through batch jobs, into the cache; returns the failures' errors."""

    def __init__(self, cfg: Any, client: openai.AsyncOpenAI, cache: ResponseCache,
                 meter: MeterHandle) -> None:
        self.cfg, self.client, self.cache, self.meter = cfg, client, cache, meter
        self.jobs_dir = storage.join(cache.root, "batches")

    async def answer(self, requests: dict[str, dict[str, Any]]) -> dict[str, str]:
        """Answer `requests` (cache key -> request) into the cache. Returns key -> error for
        the ones that could not be answered."""
        todo = dict(requests)
        errors: dict[str, str] = {}
        for job in self._open_jobs():  # a job an earlier run left: wait for it, do not pay again
            if todo.keys() & set(job["keys"]):
                log.warning("teacher %s: picking up batch job %s of an earlier run (%d requests)",
                            self.cfg.model, job["id"], len(job["keys"]))
                errors |= await self._finish(job, todo, reserved=0.0)
        attempt = 1
        while todo and attempt <= self.cfg.max_attempts:
            job, refused = await self._submit(todo, attempt)
            for key, answer in refused:
                errors[key] = not_sent_error(self.cfg, answer)
                todo.pop(key)
            if job is None:
                break
            errors = {k: e for k, e in errors.items() if k not in job["keys"]}
            errors |= await self._finish(job, todo, reserved=job["worst_usd"] / len(job["keys"]))
            attempt += 1
        return errors | {k: errors.get(k, "not answered") for k in todo}

    def _open_jobs(self) -> list[dict[str, Any]]:
        jobs = []
        for rel in sorted(storage.files_under(self.jobs_dir)):
            if rel.endswith(".json") and "/" not in rel:
                try:
                    jobs.append(json.loads(storage.read_bytes(storage.join(self.jobs_dir, rel))))
                except (OSError, ValueError):
                    continue
        return jobs

    async def _submit(self, todo: dict[str, dict[str, Any]], attempt: int
                      ) -> tuple[dict[str, Any] | None, list[tuple[str, str]]]:
        """One job for the requests the cost cap admits; returns it (None: nothing to send) and
        the keys the meter refused, with why."""
        lines, keys, refused, worst = [], [], [], 0.0
        for key, req in todo.items():
            _, cost = worst_case(self.cfg, req["messages"])
            answer = await self.meter.admit(cost)
            if answer != "send":
                refused.append((key, answer))
                continue
            body = {k: v for k, v in req.items() if k not in (*KEY_ONLY, "structured_outputs")}
            lines.append(json.dumps({"custom_id": key, "method": "POST", "url": ENDPOINT,
                                     "body": body}, ensure_ascii=False))
            keys.append(key)
            worst += cost
        if not keys:
            return None, refused
        upload = await self.client.files.create(
            file=("requests.jsonl", ("\n".join(lines) + "\n").encode("utf-8")), purpose="batch")
        batch = await self.client.batches.create(input_file_id=upload.id, endpoint=ENDPOINT,
                                                 completion_window="24h")
        job = {"id": batch.id, "input_file_id": upload.id, "keys": keys, "attempt": attempt,
               "worst_usd": worst, "submitted": time.time()}
        storage.write_bytes(storage.join(self.jobs_dir, f"{batch.id}.json"),
                            json.dumps(job).encode())  # saved before waiting: a rerun picks it up
        log.warning("teacher %s: batch job %s submitted (%d requests, attempt %d)", self.cfg.model,
                    batch.id, len(keys), attempt)
        return job, refused

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
                cost = price_usd(self.cfg, record["prompt_tokens"], record["completion_tokens"])
                self.meter.settle(reserved, cost, record["prompt_tokens"],
                                  record["completion_tokens"], False, 0)
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

"""Durable, content-addressed store of teacher responses, so no answered request is paid twice.

One file per response, named by the hash of everything that changes the answer (model, messages,
sampling settings, sample index) and nothing that does not (endpoint address, key, later
stages). Each file is written atomically (pipeline/engine/storage.py), so concurrent writers on any
node never clash and a crash leaves either the whole response or nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import time
from pathlib import Path
from typing import Any

from pipeline.engine import storage

# What the cache keeps of an answer, in this order (a record's bytes depend on it): the
# stages read the first five; `model` is the model that answered (as the API reported it, or
# the checkpoint the local engines ran).
RECORD_FIELDS = ("content", "finish_reason", "prompt_tokens", "completion_tokens", "latency_s")


def answer_record(content: str | None, finish_reason: str | None, prompt_tokens: int,
                  completion_tokens: int, latency_s: float, model: str | None,
                  cache_read_tokens: int = 0, cache_write_tokens: int = 0,
                  reasoning: str | None = None) -> dict[str, Any]:
    """An answer as the cache keeps it, whichever backend gave it: built here only. The prompt
    tokens the provider read from or wrote to its prompt cache (counted in `prompt_tokens`) and
    the model's own reasoning (extended thinking: never part of the trace) are kept only where
    there are some, so every other answer's record stays as it was."""
    record = {"content": content, "finish_reason": finish_reason, "prompt_tokens": prompt_tokens,
              "completion_tokens": completion_tokens, "latency_s": latency_s, "model": model}
    extra = {"cache_read_tokens": cache_read_tokens, "cache_write_tokens": cache_write_tokens,
             "reasoning": reasoning}
    return record | {k: v for k, v in extra.items() if v}


def completion_record(body: dict[str, Any], latency_s: float) -> dict[str, Any]:
    """A chat completion (the API's JSON, online or from a batch job) as the cache keeps it.
    Cached prompt tokens: OpenAI's `prompt_tokens_details.cached_tokens`; cache writes (which
    OpenAI does not bill) are `cache_write_tokens` there, as the Anthropic backends report them."""
    choice = body["choices"][0]
    usage = body.get("usage") or {}
    details = usage.get("prompt_tokens_details") or {}
    return answer_record(choice["message"].get("content"), choice.get("finish_reason"),
                         usage.get("prompt_tokens") or 0, usage.get("completion_tokens") or 0,
                         latency_s, body.get("model"), details.get("cached_tokens") or 0,
                         details.get("cache_write_tokens") or 0,
                         choice["message"].get("reasoning_content"))


def request_key(request: dict[str, Any]) -> str:
    blob = json.dumps(request, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class ResponseCache:
    """The store under a local directory or an fsspec URL that every node of a cluster reaches
    (a shared mount, s3://...)."""

    def __init__(self, root: str | Path) -> None:
        self.root = storage.resolve(str(root))
        self.remote = storage.is_remote(self.root)

    def _path(self, key: str) -> str:
        return storage.join(self.root, key[:2], f"{key}.json")

    def get(self, key: str) -> dict[str, Any] | None:
        path = self._path(key)
        try:
            record = json.loads(storage.read_bytes(path))
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return None  # unreadable entry: ask again and overwrite it
        if not self.remote:  # mark it used, for `cache prune --older-than`
            with contextlib.suppress(OSError):
                os.utime(path)
        return record

    def __contains__(self, key: str) -> bool:
        fs, path = storage.fs_of(self._path(key))
        return fs.exists(path)

    def put(self, key: str, response: dict[str, Any]) -> None:
        self.put_many([(key, response)])

    def put_many(self, answers: list[tuple[str, dict[str, Any]]]) -> None:
        """Store answers; returns once every one is on disk (one sync for them all)."""
        storage.write_files([(self._path(key), json.dumps(
            response, ensure_ascii=False, sort_keys=True).encode("utf-8"))
            for key, response in answers])


class BatchedWriter:
    """Puts into a cache from an event loop through a worker thread, a batch per hop: handing
    each answer to a thread of its own cost more CPU than writing it (bench/client_bench.py).
    `put` returns once the answer is on disk (written and synced), as a direct put would; the
    answers that arrive while a batch is written form the next one, and share its sync."""

    def __init__(self, cache: ResponseCache) -> None:
        self.cache = cache
        self.pending: list[tuple[str, dict[str, Any], asyncio.Future[None]]] = []
        self.draining: asyncio.Task[None] | None = None

    async def put(self, key: str, record: dict[str, Any]) -> None:
        done = asyncio.get_running_loop().create_future()
        self.pending.append((key, record, done))
        if self.draining is None or self.draining.done():
            self.draining = asyncio.create_task(self._drain())
        await done

    async def _drain(self) -> None:
        while self.pending:
            # one turn of the loop, so that the answers that came in together join the batch;
            # no longer: the caller holds its concurrency slot until its answer is synced
            await asyncio.sleep(0)
            batch, self.pending = self.pending, []
            try:
                await asyncio.to_thread(self._write, batch)
            except Exception as exc:  # a full disk, say: every put of the batch raises it
                for *_, done in batch:
                    if not done.done():
                        done.set_exception(exc)
            else:
                for *_, done in batch:
                    if not done.done():
                        done.set_result(None)

    def _write(self, batch: list[tuple[str, dict[str, Any], asyncio.Future[None]]]) -> None:
        self.cache.put_many([(key, record) for key, record, _ in batch])


ENTRY = re.compile(r"^[0-9a-f]{2}/[0-9a-f]{64}\.json$")


def _scan(root: str | Path) -> tuple[str, dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """One listing of the cache (a recursive listing is the costly part, on S3 above all): its
    resolved root, the stored responses in a stable order, and the temp files a crash left,
    each as relative name -> fsspec info."""
    base = storage.resolve(str(root))
    found = storage.files_under(base)
    answers = {rel: found[rel] for rel in sorted(found) if ENTRY.match(rel)}
    temps = {rel: info for rel, info in found.items() if "/.tmp-" in f"/{rel}"}
    return base, answers, temps


def _read(base: str, rel: str) -> dict[str, Any] | None:
    try:
        return json.loads(storage.read_bytes(storage.join(base, rel)))
    except (OSError, ValueError):
        return None


def stats(root: str | Path) -> dict[str, Any]:
    """What the cache holds: responses, bytes, the tokens they cost, their age, crash leftovers."""
    base, files, temps = _scan(root)
    out: dict[str, Any] = {"dir": str(root), "responses": len(files), "bytes": 0,
                           "prompt_tokens": 0, "completion_tokens": 0, "unreadable": 0,
                           "oldest": None, "newest": None, "leftover_temp_files": len(temps)}
    times = []
    for rel, info in files.items():
        out["bytes"] += info.get("size") or 0
        times.append(storage.modified(info))
        record = _read(base, rel)
        if record is None:
            out["unreadable"] += 1
            continue
        out["prompt_tokens"] += record.get("prompt_tokens") or 0
        out["completion_tokens"] += record.get("completion_tokens") or 0
    if times:
        out["oldest"], out["newest"] = min(times), max(times)
    return out


def export(root: str | Path, out: Path) -> int:
    """Write every readable response as one JSON line with its key; returns how many."""
    base, files, _ = _scan(root)
    n = 0
    with out.open("w", encoding="utf-8") as f:
        for rel in files:
            record = _read(base, rel)
            if record is None:
                continue
            key = rel.rsplit("/", 1)[-1].removesuffix(".json")
            f.write(json.dumps({"key": key, **record}, ensure_ascii=False, sort_keys=True) + "\n")
            n += 1
    return n


def prune(root: str | Path, older_than_s: float, dry_run: bool = False) -> tuple[int, int]:
    """Delete responses not used for `older_than_s` seconds (on object stores, which cannot
    mark a read: not written for that long), and temp files a crash left behind. Returns
    (files removed, bytes freed)."""
    base, files, temps = _scan(root)
    now = time.time()
    victims = {rel: info for rel, info in files.items()
               if storage.modified(info) < now - older_than_s}
    victims |= {rel: info for rel, info in temps.items() if storage.modified(info) < now - 3600}
    freed = sum(info.get("size") or 0 for info in victims.values())
    if not dry_run and victims:
        fs, path = storage.fs_of(base)
        fs.rm([storage.join(path, rel) for rel in sorted(victims)])
    return len(victims), freed

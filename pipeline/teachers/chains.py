"""A pair's teacher work as one chain: its pass-1 request, the checks the stages after it make
on that one row, then its pass-2 request if the filter rejected it, then its swapped request,
each sent as soon as the answer it depends on is back.

Passes answered one after another each end in a drain: pass 2's first request waits for pass
1's slowest answer, and each pass's heavy tail runs alone (the 73K build's teacher span was
1.9x pass 1's). Here every teacher keeps its own concurrency full across the passes.

Chains only fill the cache. The stages still run pass by pass afterwards and read every answer
from the cache, so shards and manifest are the same bytes whatever the chains did; a request a
chain did not send (a stage whose rows depend on other rows, a chain cut short) is asked by the
pass-by-pass step after it. A chain walks the span's stages with their own code: a teacher
stage's `wants`, `request` and `update`, a row stage's `process` on a one-row table.

Only backends that answer request by request through the client chain (an API, a vLLM server,
offline vLLM engines: their `Config` says `chainable`); one that answers a pass as one job (the
Batch API), or its own way, is asked pass by pass.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from pipeline.engine.batches import in_play, stage_view
from pipeline.engine.schema import ALIVE, REJECTED
from pipeline.engine.stage import Stage
from pipeline.teachers.cache import request_key
from pipeline.teachers.client import Answered, TeacherClient, TeacherResult, from_record
from pipeline.teachers.requests import request_for
from pipeline.teachers.stage import TeacherStage
from pipeline.teachers.teacher_config import kind_of
from pipeline.teachers.transport import Endpoint

log = logging.getLogger("rubricforge")
# Chains alive at once per actor, per slot of concurrency: enough that a free slot never waits
# for a chain to start, few enough that the rows held stay small at any scale.
CHAINS_PER_SLOT = 2


@dataclass
class Link:
    """A stage of a chain, with the columns it is given (its input's schema)."""

    stage: Stage
    schema: pa.Schema


def chain_spans(stages: list[Stage], columns_before: list[pa.Schema]) -> dict[str, list[Link]]:
    """By the name of the teacher stage that starts it: each run of stages from a teacher stage
    to the last teacher stage reached through row stages alone, when it holds two teacher
    stages or more (one alone is a pass, asked as one stream)."""
    spans: dict[str, list[Link]] = {}
    i = 0
    while i < len(stages):
        if not isinstance(stages[i], TeacherStage):
            i += 1
            continue
        j, last = i, i
        while j + 1 < len(stages) and stages[j + 1].is_row_stage:
            j += 1
            if isinstance(stages[j], TeacherStage):
                last = j
        span = [Link(stages[k], columns_before[k]) for k in range(i, last + 1)]
        if sum(isinstance(link.stage, TeacherStage) for link in span) > 1:
            spans[stages[i].name] = span
        i = last + 1
    return spans


def not_chained(span: list[Link]) -> str | None:
    """Why the span's stages are asked pass by pass, or None (chained)."""
    teachers = {s.name: s.teacher_config() for s in teacher_links(span)}
    alone = [f"{name}'s teacher ({t.backend})" for name, t in teachers.items()
             if not kind_of(t).chainable]
    if alone:
        return f"{' and '.join(alone)} answers a pass its own way, not request by request"
    # Two model instances on the same CPUs at once each run slower than one alone: chained,
    # the span would take longer than pass by pass.
    if len({kind_of(t).on_these_cpus(t) for t in teachers.values()} - {None}) > 1:
        return "their teachers are different model instances on this machine's CPUs"
    return None


def teacher_links(span: list[Link]) -> list[TeacherStage]:
    return [link.stage for link in span if isinstance(link.stage, TeacherStage)]


def _in_play(stage: Stage, row: dict[str, Any]) -> bool:
    """`pipeline.engine.batches.in_play` for one row."""
    return row["outcome"] == ALIVE or (row["outcome"] == REJECTED
                                        and row["decided_by"] in stage.reopens)


class _Chainer:
    """One actor's share of the chains: the rows of its blocks that the span's first stage asks
    about, each walked through the span."""

    def run(self, span: list[Link], endpoints: dict[str, list[Endpoint]], meters: dict[str, Any],
            shares: dict[str, int], blocks: list[Any]) -> dict[str, Answered]:
        return asyncio.run(_Chains(span, endpoints, meters, shares).run(blocks))


class _Chains:
    def __init__(self, span: list[Link], endpoints: dict[str, list[Endpoint]],
                 meters: dict[str, Any], shares: dict[str, int]) -> None:
        self.span = span
        self.clients: dict[str, TeacherClient] = {}
        for stage in teacher_links(span):
            client = TeacherClient(stage.teacher_config(), endpoints[stage.name],
                                   meters[stage.teacher_key], stage.name)
            client.cfg.concurrency = shares[stage.teacher_key]
            self.clients[stage.name] = client
        self.shares = shares
        self.answered: dict[str, Answered] = {name: {} for name in self.clients}
        self.asking: dict[tuple[str, str], asyncio.Task[TeacherResult]] = {}
        self.failed = 0

    async def run(self, blocks: list[Any]) -> dict[str, Answered]:
        import ray

        # one semaphore per teacher setting: pass 1 and the swap check share `teacher`'s
        self.limits = {key: asyncio.Semaphore(n) for key, n in self.shares.items()}
        self.senders = {name: c._senders() for name, c in self.clients.items()}
        alive = asyncio.Semaphore(CHAINS_PER_SLOT * sum(self.shares.values()))
        running: set[asyncio.Task[None]] = set()
        first = self.span[0].stage
        assert isinstance(first, TeacherStage)
        try:
            for ref in blocks:
                # fetched off the event loop (from the object store, maybe remote)
                block = await asyncio.to_thread(ray.get, ref)
                _, rows = first.asked(block.filter(in_play(first, block)))
                for row in rows:
                    await alive.acquire()
                    task = asyncio.create_task(self._chain(row, alive))
                    running.add(task)
                    task.add_done_callback(running.discard)
            await asyncio.gather(*running)
        finally:
            for senders in self.senders.values():
                for sender in senders:
                    await sender.close()
        if self.failed:
            log.warning("chains: %d stopped early on a stage's error; the passes ask the rest",
                        self.failed)
        return self.answered

    async def _chain(self, row: dict[str, Any], alive: asyncio.Semaphore) -> None:
        try:
            for link in self.span:
                stage = link.stage
                if not _in_play(stage, row):
                    continue
                if isinstance(stage, TeacherStage):
                    if stage.wants(row):
                        result = await self._ask(stage, stage.request(row), link is self.span[0])
                        row.update(stage.update(row, result))
                else:
                    out = stage.process(stage_view(stage, pa.Table.from_pylist([row],
                                                                               link.schema)))
                    row.update({c: out.column(c)[0].as_py() for c in stage.outputs})
        except Exception:  # a prefetch only: the pass-by-pass step asks what is left, or fails
            self.failed += 1
            log.debug("a chain stopped", exc_info=True)
        finally:
            alive.release()

    async def _ask(self, stage: TeacherStage, messages: list[dict[str, str]],
                   first: bool) -> TeacherResult:
        """The answer from the cache, from a request already on its way (identical requests are
        sent once), or asked now."""
        client = self.clients[stage.name]
        request = request_for(client.cfg, messages)
        key = request_key(request)
        task = self.asking.get((stage.name, key))
        if task is None:
            hit = client.cache.get(key)
            if hit is not None:
                return from_record(hit, cached=True)
            if not first:  # pass 1's requests were counted before the chains started
                client.meter.note_queued(1)
            senders = self.senders[stage.name]
            task = asyncio.create_task(client._one(
                senders[len(self.asking) % len(senders)], self.limits[stage.teacher_key], key,
                request, checked=True))
            self.asking[(stage.name, key)] = task
            result = await task
            self.answered[stage.name][key] = result.error
            return result
        return await task


def answer_chains(ds: Any, span: list[Link], endpoints: dict[str, list[Endpoint]],
                  meters: dict[str, Any], actors: int, num_cpus: float | None
                  ) -> dict[str, Answered]:
    """Walk every pair the span's first stage asks about through the span, in `actors` Ray
    actors (each with its share of the blocks and of every teacher's concurrency); returns, per
    teacher stage, what became of each request the chains sent."""
    import ray

    from pipeline.teachers.answering import interrupted

    blocks = ds.to_arrow_refs()
    actors = max(1, min(actors, len(blocks)))
    shares = {s.teacher_key: max(1, -(-s.teacher_config().concurrency // actors))
              for s in teacher_links(span)}
    # A dead actor is restarted and its call run again: answers already cached are read back.
    remote = ray.remote(_Chainer).options(num_cpus=num_cpus, max_restarts=3, max_task_retries=3)
    workers = [remote.remote() for _ in range(actors)]
    calls = [w.run.remote(span, endpoints, {k: meters[k] for k in shares}, shares, blocks[i::actors])
             for i, w in enumerate(workers)]
    answered: dict[str, Answered] = {s.name: {} for s in teacher_links(span)}
    try:
        for part in ray.get(calls):
            for name, keys in part.items():
                answered[name] |= keys
    except KeyboardInterrupt:
        interrupted([meters[k] for k in shares], calls)
        raise
    finally:
        for w in workers:
            ray.kill(w)
    for name, keys in answered.items():
        failed = sum(e is not None for e in keys.values())
        log.warning("%s: chains sent %d requests, %d failed", name, len(keys), failed)
    return answered

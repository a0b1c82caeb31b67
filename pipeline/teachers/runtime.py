"""The teacher side of a run, for the build and `rubricforge eval` alike: endpoints started on
demand, one spend meter per teacher setting, the progress display, answering what the cache
cannot (a pass as one stream, or several passes as chains), and the spend report."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from functools import partial
from pathlib import Path
from typing import Any, TextIO

import pyarrow as pa
import pyarrow.compute as pc
import ray

from pipeline.engine.stage import Resources
from pipeline.teachers.backends import backend_of
from pipeline.teachers.chains import Link, answer_chains, not_chained, teacher_links
from pipeline.teachers.client import Answered
from pipeline.teachers.progress import TeacherProgress
from pipeline.teachers.spend import Meter
from pipeline.teachers.stage import TeacherStage, requests_of
from pipeline.teachers.transport import Endpoint

log = logging.getLogger("rubricforge")


class RunEndpoints:
    """What the run's backends started (servers, engines): started the first time a stage has
    requests the cache cannot answer, shared by every later stage that asks the same model,
    stopped when the run ends."""

    def __init__(self, stack: contextlib.ExitStack, log_path: Path, on_cluster: bool) -> None:
        self.stack, self.log_path, self.on_cluster = stack, log_path, on_cluster
        self.started: dict[tuple[Any, ...], list[Endpoint]] = {}

    def start(self, key: tuple[Any, ...], pending: int,
              starter: Callable[[], list[Endpoint]]) -> list[Endpoint]:
        """The endpoints started as `key` (the backend's name and the settings that make what
        it starts), started now if something is pending and they are not running yet (none
        otherwise)."""
        if key not in self.started and pending:
            self.started[key] = starter()
        return self.started.get(key, [])

    def enter(self, context: Any) -> Any:
        """Enter a context manager that lives as long as the run."""
        return self.stack.enter_context(context)


class TeacherRuntime:
    """Lives as long as the run's Ray session (`stack` closes what it started)."""

    def __init__(self, cfg: Any, keys: list[str], stack: contextlib.ExitStack, log_path: Path,
                 on_cluster: bool, terminal: TextIO | None) -> None:
        self.cfg = cfg
        self.endpoints = RunEndpoints(stack, log_path, on_cluster)
        # one meter actor per teacher setting asked (`teacher`, `teacher2`), for this run
        self.meters = {key: ray.remote(Meter).options(num_cpus=0, max_restarts=-1,
                                                      max_task_retries=-1)
                       .remote(cfg[key].max_cost_usd) for key in sorted(set(keys))}
        self.progress = TeacherProgress(self.meters, terminal)
        stack.callback(self.progress.close)

    def endpoints_of(self, teacher: Any, pending: int) -> list[Endpoint]:
        return backend_of(teacher).endpoints(teacher, pending, self.endpoints)

    def answer(self, requests: Any, n: int, teacher: Any, key: str, who: str,
               resources: Resources) -> tuple[list[Endpoint], Answered]:
        """One pass: the `n` uncached requests (a Ray Dataset of `request_table` rows) of `who`
        answered into the cache as its backend does. Returns the endpoints and what became of
        each key."""
        self.progress.expect(who, key, teacher.model, n)
        endpoints = self.endpoints_of(teacher, n)
        answered = (backend_of(teacher).answer(requests, n, teacher, who, self.meters[key],
                                               endpoints, resources) if n else {})
        return endpoints, answered

    def before_stage(self, ds: Any, stage: TeacherStage, span: list[Link] | None,
                     while_waiting: Callable[[], AbstractContextManager[None]] | None = None
                     ) -> None:
        """Answer into the cache what `stage` will ask of the rows of `ds` (its input); where it
        starts a span of teacher stages whose teachers stream, chains answer the later stages'
        requests too. `while_waiting` is entered while something is sent (the caller does work
        that the wait leaves CPU for). Sets the stage's endpoints and answered keys on the
        build context."""
        ctx, teacher = stage.ctx, stage.teacher_config()
        answered = ctx.answered.setdefault(stage.name, {})
        requests = ds.map_batches(partial(requests_of, stage), batch_format="pyarrow").materialize()
        pending = requests.count()
        log.warning("%s: teacher %s: %d requests not in the cache", stage.name, teacher.model,
                    pending)
        with while_waiting() if pending and while_waiting else contextlib.nullcontext():
            if pending and span and self._chained(stage, span):
                self._chains(ds, span, pending)
                left = requests.map_batches(partial(_not_in, ray.put(set(answered))),
                                            batch_format="pyarrow").materialize()
                requests, pending = left, left.count()
            endpoints, more = self.answer(requests, pending, teacher, stage.teacher_key,
                                          stage.name, stage.configured_resources())
        ctx.endpoints[stage.name] = endpoints
        answered |= more

    @staticmethod
    def _chained(stage: TeacherStage, span: list[Link]) -> bool:
        why = not_chained(span)
        if why is not None:
            log.warning("%s: asking %s pass by pass: %s", stage.name,
                        " -> ".join(s.name for s in teacher_links(span)), why)
        return why is None

    def _chains(self, ds: Any, span: list[Link], pending: int) -> None:
        first = span[0].stage
        assert isinstance(first, TeacherStage)
        ctx = first.ctx
        for stage in teacher_links(span):
            teacher = stage.teacher_config()
            ctx.endpoints[stage.name] = self.endpoints_of(teacher, pending)
            self.progress.expect(stage.name, stage.teacher_key, teacher.model,
                                 pending if stage is first else 0, chained=True)
        for link in span:
            if not isinstance(link.stage, TeacherStage):
                link.stage.prepare()
        resources = first.configured_resources()
        log.warning("%s: asking %s in chains (each pair's next request as soon as its answer is "
                    "checked)", first.name, " -> ".join(s.name for s in teacher_links(span)))
        done = answer_chains(ds, span, dict(ctx.endpoints), self.meters,
                             max(1, resources.actors or 1), resources.num_cpus)
        for name, keys in done.items():
            ctx.answered.setdefault(name, {}).update(keys)

    def close(self) -> None:
        """Say what this run spent and, when a cap stopped requests, how to finish."""
        for key, snap in self.progress.close().items():
            stages = snap["stages"].values()
            refused = sum(s["refused"] for s in stages)
            sent = sum(s["answered"] + s["errors"] for s in stages)
            cap = f" of the ${snap['cap_usd']:.2f} cap" if snap["cap_usd"] is not None else ""
            prompt = sum(s["prompt_tokens"] for s in stages)
            read = sum(s["cache_read_tokens"] for s in stages)
            cached = (f"; {read:,} of {prompt:,} prompt tokens ({read / prompt:.0%}) read from "
                      "the provider's prompt cache" if read else "")
            log.warning("%s %s: %d requests sent this run, $%.4f spent%s%s", key,
                        self.cfg[key].model, sent, snap["spent_usd"], cap, cached)
            if refused:
                log.warning("%s.max_cost_usd reached: %d requests not sent, their rows rejected "
                            "as cost_cap; rerun with a higher %s.max_cost_usd to finish (every "
                            "answer so far is cached and will not be paid again)", key, refused,
                            key)


def _not_in(keys: Any, batch: pa.Table) -> pa.Table:
    """The requests of `batch` whose key is not in `keys` (an object ref of a set)."""
    answered = ray.get(keys)
    return batch.filter(pc.invert(pc.is_in(batch.column("key"),
                                           pa.array(list(answered), pa.string()))))

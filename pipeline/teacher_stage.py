"""The shape every stage that asks a teacher shares: which rows it asks about, what it asks,
and what an answer means for the row. The asking itself (cache, concurrency, retries, the
endpoint the engine started) is done once, here."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from pipeline.stage import Resources, Stage, map_rows
from pipeline.teacher_client import TeacherResult, ask, uncached

Messages = list[dict[str, str]]


class TeacherStage(Stage):
    """Subclasses set `teacher_key` and implement `wants`, `request` and `update`."""

    def wants(self, row: dict[str, Any]) -> bool:
        """Whether this row needs an answer from the teacher."""
        raise NotImplementedError

    def request(self, row: dict[str, Any]) -> Messages:
        raise NotImplementedError

    def update(self, row: dict[str, Any], result: TeacherResult) -> dict[str, Any]:
        """The row's column updates (and fate) given the teacher's answer."""
        raise NotImplementedError

    def resources(self) -> Resources:
        # I/O bound: one actor holds the client; the teacher config sets the concurrency.
        return Resources(num_cpus=0.5, actors=1)

    def uncached_requests(self, rows: pa.Table) -> dict[str, dict[str, Any]]:
        return uncached(self.teacher_config(),
                        [self.request(r) for r in rows.to_pylist() if self.wants(r)])

    def process(self, rows: pa.Table) -> pa.Table:
        records = rows.to_pylist()
        todo = [i for i, r in enumerate(records) if self.wants(r)]
        results = ask(self.name, self.teacher_config(), self.ctx.endpoints.get(self.name),
                      [self.request(records[i]) for i in todo],
                      self.ctx.meters.get(self.teacher_key), self.ctx.offline.get(self.name))
        updates = {i: self.update(records[i], r) for i, r in zip(todo, results, strict=True)}
        index = iter(range(rows.num_rows))
        return map_rows(rows, lambda _row: updates.get(next(index), {}), self.outputs)

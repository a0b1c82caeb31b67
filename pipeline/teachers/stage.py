"""The shape every stage that asks a teacher shares: which rows it asks about, what it asks,
and what an answer means for the row. The asking itself is done before the stage runs, as one
stream (pipeline/teachers/answering.py: `resources.actors` clients, `teacher.concurrency` in flight);
the stage then reads the answers from the cache."""

from __future__ import annotations

from typing import Any, ClassVar

import pyarrow as pa

from pipeline.engine.batches import in_play, request_table, visible
from pipeline.engine.stage import Stage, map_rows
from pipeline.teachers.client import TeacherResult, ask, uncached

Messages = list[dict[str, str]]


# RM-R1 reports about this share of zero-shot verdicts right: what `--estimate` assumes of
# pass 1 to project the stages after it.
ZERO_SHOT_ACCURACY = 0.75


class TeacherStage(Stage):
    """Subclasses set `teacher_key` and implement `wants`, `request` and `update`."""

    # The config key of the teacher the stage asks ("teacher", "teacher2").
    teacher_key: ClassVar[str]

    # For `--estimate`, a stage after the first teacher stage, whose requests depend on pass 1's
    # answers: whether its prompt carries pass 1's trace on top of the judge prompt.
    prompt_adds_trace: ClassVar[bool] = False

    def projected_share(self, accuracy: float) -> float:
        """For `--estimate`: the share of pass 1's calls this later stage makes, given the share
        of pass 1's verdicts that are right."""
        return 0.0

    def wants(self, row: dict[str, Any]) -> bool:
        """Whether this row needs an answer from the teacher."""
        raise NotImplementedError

    def request(self, row: dict[str, Any]) -> Messages:
        raise NotImplementedError

    def update(self, row: dict[str, Any], result: TeacherResult) -> dict[str, Any]:
        """The row's column updates (and fate) given the teacher's answer."""
        raise NotImplementedError

    def teacher_config(self) -> Any:
        """The teacher this stage asks (`cfg.<teacher_key>`). The build starts its endpoint
        before the stage runs, only when requests are pending."""
        return self.ctx.cfg[self.teacher_key]

    def uncached_requests(self, rows: pa.Table) -> dict[str, dict[str, Any]]:
        """The requests these rows need that the cache cannot answer, by cache key."""
        return uncached(self.teacher_config(),
                        [self.request(r) for r in rows.to_pylist() if self.wants(r)])

    def process(self, rows: pa.Table) -> pa.Table:
        records = rows.to_pylist()
        todo = [i for i, r in enumerate(records) if self.wants(r)]
        results = ask(self.name, self.teacher_config(), self.ctx.endpoints.get(self.name),
                      [self.request(records[i]) for i in todo],
                      self.ctx.meters.get(self.teacher_key), self.ctx.answered.get(self.name))
        updates = {i: self.update(records[i], r) for i, r in zip(todo, results, strict=True)}
        index = iter(range(rows.num_rows))
        return map_rows(rows, lambda _row: updates.get(next(index), {}), self.outputs)


def requests_of(stage: TeacherStage, batch: pa.Table) -> pa.Table:
    """The requests a teacher stage's rows in play need that the cache cannot answer (run on
    the workers, one batch at a time)."""
    rows = batch.filter(in_play(stage, batch))
    return request_table(stage.uncached_requests(rows.select(visible(stage, rows.column_names))))

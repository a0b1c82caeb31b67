"""The shape every stage that asks a teacher shares: which rows it asks about, what it asks,
and what an answer means for the row. The asking itself is done before the stage runs, as one
stream (pipeline/teachers/answering.py: `resources.actors` clients, `teacher.concurrency` in flight)
or, for stages that follow each other, in chains (pipeline/teachers/chains.py, which walk a row
through these same methods); the stage then reads the answers from the cache."""

from __future__ import annotations

from typing import Any, ClassVar

import pyarrow as pa

from pipeline.engine.batches import in_play, request_table, stage_view
from pipeline.engine.stage import Stage, set_rows
from pipeline.teachers.client import TeacherResult, ask
from pipeline.teachers.requests import uncached

Messages = list[dict[str, str]]


# RM-R1 reports about this share of zero-shot verdicts right: what `--estimate` assumes of
# pass 1 to project the stages after it.
ZERO_SHOT_ACCURACY = 0.75


class TeacherStage(Stage):
    """Subclasses set `teacher_key` and implement `wants`, `request` and `update`."""

    # The config key of the teacher the stage asks ("teacher", "teacher2").
    teacher_key: ClassVar[str]
    # What `wants` reads: light columns, so that only the rows asked about are converted whole
    # (pass 1 asks about one row in eight; the judge prompts are most of a row).
    wants_columns: ClassVar[tuple[str, ...]] = ("split",)

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

    def asked(self, rows: pa.Table) -> tuple[list[int], list[dict[str, Any]]]:
        """The positions of the rows that need an answer, and those rows."""
        light = rows.select(list(self.wants_columns)).to_pylist()
        todo = [i for i, r in enumerate(light) if self.wants(r)]
        return todo, rows.take(pa.array(todo, pa.int64())).to_pylist()

    def uncached_requests(self, rows: pa.Table) -> dict[str, dict[str, Any]]:
        """The requests these rows need that the cache cannot answer and this run has not
        asked yet (a chain's request that failed is not asked twice), by cache key."""
        done = self.ctx.answered.get(self.name, {})
        return {k: r for k, r in uncached(self.teacher_config(),
                                          [self.request(r) for r in self.asked(rows)[1]]).items()
                if k not in done}

    def process(self, rows: pa.Table) -> pa.Table:
        todo, records = self.asked(rows)
        results = ask(self.name, self.teacher_config(), self.ctx.endpoints.get(self.name),
                      [self.request(r) for r in records],
                      self.ctx.meters.get(self.teacher_key), self.ctx.answered.get(self.name))
        return set_rows(rows, {i: self.update(r, result) for i, r, result
                               in zip(todo, records, results, strict=True)}, self.outputs)


def requests_of(stage: TeacherStage, batch: pa.Table) -> pa.Table:
    """The requests a teacher stage's rows in play need that the cache cannot answer (run on
    the workers, one batch at a time)."""
    rows = stage_view(stage, batch.filter(in_play(stage, batch)))
    return request_table(stage.uncached_requests(rows))

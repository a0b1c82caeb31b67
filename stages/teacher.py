"""Ask the teacher for a judging trace of every distillation pair, through the response cache."""

from __future__ import annotations

from typing import Any

from pipeline.engine.schema import SFT
from pipeline.teachers.client import RESULT_COLUMNS, TeacherResult, result_columns
from pipeline.teachers.stage import Messages, TeacherStage


class Teacher(TeacherStage):
    name = "teacher"
    inputs = ("split", "context_messages")
    outputs = (*RESULT_COLUMNS, "pass_index")
    teacher_key = "teacher"

    def wants(self, row: dict[str, Any]) -> bool:
        return row["split"] == SFT

    def request(self, row: dict[str, Any]) -> Messages:
        return row["context_messages"]

    def update(self, row: dict[str, Any], result: TeacherResult) -> dict[str, Any]:
        return result_columns(result, self.teacher_config().model) | {"pass_index": 1}

"""Write the judge prompt: the system prompt, then the pair with the winner placed as decided."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from pipeline.engine.stage import Stage, map_rows
from pipeline.rules.judge_prompt import judge_messages, placed


class Render(Stage):
    name = "render"
    inputs = ("prompt", "chosen", "rejected", "winner")
    outputs = ("context_messages",)

    def process(self, rows: pa.Table) -> pa.Table:
        templates = self.templates

        def one(row: dict[str, Any]) -> dict[str, Any]:
            a, b = placed(row, row["winner"])
            return {"context_messages": judge_messages(row["prompt"], a, b, templates)}

        return map_rows(rows, one)

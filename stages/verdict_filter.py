"""Keep a teacher trace only when the RL reward rule scores it +1, its format is complete and it
judges these answers (its quotes are theirs, nothing is copied from the instructions).

Rows that pass stay in play (a later stage may still check them); rows that fail are rejected
with the reason, and a pass-2 stage may take them back.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.engine.schema import REJECTED, SFT
from pipeline.engine.stage import Stage, decide, set_rows
from pipeline.rules.judge_prompt import evidence
from pipeline.rules.trace_checks import check_response


class VerdictFilter(Stage):
    name = "verdict_filter"
    inputs = ("split", "winner", "trace", "teacher_error", "finish_reason", "prompt", "chosen",
              "rejected")
    outputs = ("verdict", "quote_fidelity", "outcome", "reason", "detail", "decided_by")
    # the lowest share of a quote's words found in the answer it cites (null: no quote read)
    columns = {"quote_fidelity": pa.float64()}

    def process(self, rows: pa.Table) -> pa.Table:
        # only distillation rows have a trace: the others (most) are not even converted
        sft = pc.indices_nonzero(pc.fill_null(pc.equal(rows.column("split"), SFT), False))

        def one(row: dict[str, Any]) -> dict[str, Any]:
            t = self.templates
            check = check_response(row["trace"], row["winner"], row["teacher_error"],
                                   row["finish_reason"], evidence(row, row["winner"]), t.system,
                                   t.min_quote_fidelity)
            found = {"verdict": check.verdict, "quote_fidelity": check.quote_fidelity}
            if not check.reason:
                return found
            return found | decide(REJECTED, check.reason, self.name, check.detail)

        return set_rows(rows, {i: one(r) for i, r in zip(sft.to_pylist(),
                                                       rows.take(sft).to_pylist(), strict=True)},
                        self.outputs)

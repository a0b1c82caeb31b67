"""Check the preference labels themselves, before any teacher call: a pair whose source
publishes a reference answer is `verified` when its chosen answer reaches that answer and the
rejected one does not, `contested` when the chosen one misses it or the rejected one reaches
it (pipeline/rules/labels.py, with `math-verify`), `unverified` otherwise.

A wrong label costs twice: SFT would keep a trace that argues for the wrong answer (pass 2 is
handed the label as a hint), and RL would reward a judge for agreeing with it. What happens to
a contested pair is the user's choice, per part: `drop` (rejected as `contested_label`, with the
evidence) or `mark` (kept, with `label_status: contested` and the evidence). Every checked row
records its `label_status` and `label_evidence`; the manifest and the card count them per source.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from pipeline.engine.schema import REJECTED, SFT
from pipeline.engine.stage import Stage, decide, map_rows
from pipeline.rules.labels import CONTESTED, check_label

POLICIES = ("drop", "mark")


@dataclass(frozen=True)
class LabelCheckParams:
    # What a contested pair becomes in each part: drop (rejected as contested_label) or mark
    # (kept, with label_status contested).
    sft: str = "drop"
    rl: str = "drop"

    def check(self) -> str | None:
        for part in ("sft", "rl"):
            if getattr(self, part) not in POLICIES:
                return (f"{part}={getattr(self, part)!r}: set drop (rejected as "
                        "contested_label) or mark (kept, marked contested)")
        return None


class LabelCheck(Stage):
    name = "label_check"
    inputs = ("split", "chosen", "rejected", "reference")
    outputs = ("label_status", "label_evidence", "outcome", "reason", "detail", "decided_by")
    columns = {
        # verified, unverified or contested, and what says so (its kind before the colon)
        "label_status": pa.string(),
        "label_evidence": pa.string(),
    }
    Params = LabelCheckParams

    def process(self, rows: pa.Table) -> pa.Table:
        def one(row: dict[str, Any]) -> dict[str, Any]:
            status, evidence = check_label(row["reference"], row["chosen"][0]["content"],
                                           row["rejected"][0]["content"])
            found = {"label_status": status, "label_evidence": evidence}
            policy = self.params.sft if row["split"] == SFT else self.params.rl
            if status == CONTESTED and policy == "drop":
                return found | decide(REJECTED, "contested_label", self.name, evidence)
            return found

        return map_rows(rows, one, ("label_status", "label_evidence"))

"""xinlai/Math-Step-DPO-10K: a shared correct prefix of steps, then diverging continuations.

As in RM-R1, an answer is `initial_reason_steps` followed by `full_chosen` / `full_rejected`.
The published `answer` is the reference the label check compares both answers' results with.
"""

from __future__ import annotations

from typing import Any

import datasets

from stages.sources.base import Pair, Source, text

_COLUMNS = ("dataset", "prompt", "initial_reason_steps", "chosen", "rejected",
            "full_chosen", "full_rejected", "answer")


class MathStepDPO(Source):
    name = "math_step_dpo"
    features = datasets.Features({k: datasets.Value("string") for k in _COLUMNS})

    def to_pair(self, row: dict[str, Any]) -> Pair:
        steps = text(row, "initial_reason_steps")
        return Pair(
            prompt=[{"role": "user", "content": text(row, "prompt")}],
            chosen=[{"role": "assistant", "content": steps + text(row, "full_chosen")}],
            rejected=[{"role": "assistant", "content": steps + text(row, "full_rejected")}],
            subset=text(row, "dataset"),
            domain="math",
            reference=row.get("answer") if isinstance(row.get("answer"), str) else None,
        )

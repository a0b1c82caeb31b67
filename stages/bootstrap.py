"""Pass 2 (RM-R1's bootstrapping): ask a second teacher again for the pairs pass 1 got wrong,
showing it the flawed judgement and the correct verdict.

The new trace must pass the same filter as pass 1 and must not lean on the hint
(`pipeline/rules/hint_leak.py`); otherwise the row stays rejected, with pass 2's reason and pass 1's
in `detail`. The data keeps the plain judge prompt: the hinted request exists only in the
teacher's cache. Each row records its pass (`pass_index`), its teacher and, under `pass1`, what
pass 1 produced.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from pipeline.engine.schema import ALIVE, REJECTED, SFT
from pipeline.engine.stage import decide
from pipeline.rules.hint_leak import hint_leak
from pipeline.rules.judge_prompt import evidence, hinted_messages
from pipeline.rules.templates import fill
from pipeline.rules.trace_checks import check_response
from pipeline.rules.verdict import COST_CAP, WINNER_TO_LABEL
from pipeline.teachers.client import RESULT_COLUMNS, TeacherResult, result_columns
from pipeline.teachers.stage import Messages, TeacherStage


class Bootstrap(TeacherStage):
    name = "bootstrap"
    inputs = ("split", "winner", "context_messages", "trace", "verdict", "teacher_model",
              "teacher_error", "prompt_tokens", "completion_tokens", "cache_read_tokens", "cached",
              "prompt", "chosen", "rejected")
    outputs = (*RESULT_COLUMNS, "pass_index", "verdict", "quote_fidelity", "pass1", "pass1_cached",
               "outcome", "reason", "detail", "decided_by")
    columns = {
        # what pass 1 produced for a row this pass retried
        "pass1": pa.struct([("teacher_model", pa.string()), ("verdict", pa.string()),
                            ("reason", pa.string()), ("prompt_tokens", pa.int64()),
                            ("completion_tokens", pa.int64()),
                            ("cache_read_tokens", pa.int64())]),
        "pass1_cached": pa.bool_(),
        "quote_fidelity": pa.float64()}
    run_only_columns = ("pass1_cached",)
    reopens = ("verdict_filter",)
    teacher_key = "teacher2"
    prompt_adds_trace = True

    def projected_share(self, accuracy: float) -> float:
        return 1 - accuracy  # the pairs pass 1 got wrong

    wants_columns = ("split", "outcome", "reason")

    def wants(self, row: dict[str, Any]) -> bool:
        # a pair pass 1 never judged (its cost cap held it back) is not one it got wrong
        return row["split"] == SFT and row["outcome"] == REJECTED and row["reason"] != COST_CAP

    def request(self, row: dict[str, Any]) -> Messages:
        flawed = None if row["teacher_error"] else row["trace"]
        return hinted_messages(row["context_messages"], flawed, WINNER_TO_LABEL[row["winner"]],
                               self.templates)

    def update(self, row: dict[str, Any], result: TeacherResult) -> dict[str, Any]:
        model = self.teacher_config().model
        label = WINNER_TO_LABEL[row["winner"]]
        pass1 = {"teacher_model": row["teacher_model"], "verdict": row["verdict"],
                 "reason": row["reason"], "prompt_tokens": row["prompt_tokens"],
                 "completion_tokens": row["completion_tokens"],
                 "cache_read_tokens": row["cache_read_tokens"]}
        out = result_columns(result, model) | {"pass_index": 2, "pass1": pass1,
                                               "pass1_cached": row["cached"]}
        t = self.templates
        check = check_response(result.content, row["winner"], result.error, result.finish_reason,
                               evidence(row, row["winner"]), t.system, t.min_quote_fidelity)
        out |= {"verdict": check.verdict, "quote_fidelity": check.quote_fidelity}
        reason, detail = check.reason, check.detail
        if not reason:
            leak = hint_leak(result.content, fill(self.templates.hint, {"label": label}))
            reason, detail = ("hint_leak", leak) if leak else ("", "")
        if not reason:
            return out | {"outcome": ALIVE, "reason": "", "detail": "", "decided_by": ""}
        first = f"pass 1: {row['reason']}"
        return out | decide(REJECTED, reason, self.name,
                            f"pass 2: {detail}; {first}" if detail else f"pass 2; {first}")

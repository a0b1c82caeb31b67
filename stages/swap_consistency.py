"""Order-swap consistency: keep a distillation pair only when the teacher also picks the better
answer with Chatbot A and B swapped.

LLM judges change their verdict when the order changes in a large share of cases; a trace whose
verdict only holds in one order teaches position, not judgement. The swapped judgement is asked
of the pass-1 teacher without any hint, through the same cache; only its verdict counts (the
kept trace is the original one). Rows that fail are rejected as `position_inconsistent`;
every judged row records `swap` (teacher, verdict, consistent), so the manifest reports the
agreement rate per source and teacher. Add it after the filter (and pass 2):
`recipe.stages.swap_consistency={}` (the recipes list it, off).

With `keep_both` (the default), a swapped judgement that passes every check the filter applies
is kept too, as `swap_messages`: the writer adds it to the SFT part as a second row with the
other verdict, so the pair teaches both positions at no extra cost (it was paid for already).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from pipeline.engine.schema import MESSAGES, REJECTED, SFT
from pipeline.engine.stage import decide
from pipeline.rules.judge_prompt import evidence, swapped_messages
from pipeline.rules.trace_checks import check_response
from pipeline.rules.verdict import COST_CAP, SWAPPED, WINNER_TO_LABEL
from pipeline.teachers.client import TeacherResult
from pipeline.teachers.stage import Messages, TeacherStage


@dataclass(frozen=True)
class SwapConsistencyParams:
    # Keep a good swapped trace as a second SFT row (one trace says A, the other B).
    keep_both: bool = True


class SwapConsistency(TeacherStage):
    name = "swap_consistency"
    inputs = ("split", "prompt", "chosen", "rejected", "winner", "trace")
    outputs = ("swap", "swap_cached", "swap_messages", "outcome", "reason", "detail", "decided_by")
    columns = {
        # the judgement with A and B swapped
        "swap": pa.struct([("teacher_model", pa.string()), ("verdict", pa.string()),
                           ("consistent", pa.bool_()), ("prompt_tokens", pa.int64()),
                           ("completion_tokens", pa.int64()), ("quote_fidelity", pa.float64())]),
        "swap_cached": pa.bool_(),
        # the swapped judgement as a second SFT row (the judge chat with A and B swapped, and
        # its trace), when both orders were right and every check passed
        "swap_messages": MESSAGES}
    run_only_columns = ("swap_cached",)
    Params = SwapConsistencyParams
    teacher_key = "teacher"

    def projected_share(self, accuracy: float) -> float:
        return 1.0  # about every pair kept (pass 2 keeps most of what pass 1 got wrong)

    wants_columns = ("split", "trace")

    def wants(self, row: dict[str, Any]) -> bool:
        return row["split"] == SFT and bool(row["trace"])

    def request(self, row: dict[str, Any]) -> Messages:
        return swapped_messages(row, self.templates)

    def update(self, row: dict[str, Any], result: TeacherResult) -> dict[str, Any]:
        winner = SWAPPED[row["winner"]]
        t = self.templates
        check = check_response(result.content, winner, result.error, result.finish_reason,
                               evidence(row, winner), t.system, t.min_quote_fidelity)
        if check.reason == COST_CAP:  # never asked: no swapped judgement to record
            return {"swap_cached": False} | decide(REJECTED, COST_CAP, self.name, check.detail)
        consistent = check.verdict == WINNER_TO_LABEL[winner] and not result.error
        update = {"swap": {"teacher_model": self.teacher_config().model, "verdict": check.verdict,
                           "consistent": consistent, "prompt_tokens": result.prompt_tokens,
                           "completion_tokens": result.completion_tokens,
                           "quote_fidelity": check.quote_fidelity},
                  "swap_cached": result.cached}
        if consistent:
            if self.params.keep_both and not check.reason:
                answer = {"role": "assistant", "content": result.content}
                update["swap_messages"] = [*self.request(row), answer]
            return update
        said = f"said {check.verdict}" if check.verdict else check.reason
        return update | decide(REJECTED, "position_inconsistent", self.name,
                               f"A/B swapped: {said}, winner is {WINNER_TO_LABEL[winner]}")

"""Doubt a label where the teachers' own judgements say it is wrong, before pass 2 argues for it.

Pass 2 hands the teacher the label as a hint and keeps whatever trace argues for it: a wrong
label becomes a fluent argument for the wrong answer. A single wrong pass-1 verdict is no
evidence (a good teacher misses about one pair in four zero-shot), so every pair pass 1 judged
wrong is judged once more without any hint: by the `audit` teacher on the same prompt when one
is configured (a second opinion), else by the pass-1 teacher with Chatbot A and B swapped (the
judgement `swap_consistency` asks, through the same cache, so it is paid for once). When that
judgement also picks the rejected answer, every unhinted judgement disagrees with the label:
the pair is `contested` (evidence `teachers: ...`), and with `sft: drop` it is rejected as
`contested_label` and pass 2 never asks about it; with `mark` pass 2 may still keep a trace,
marked. A pair pass 1 judged right is `verified` by the teachers; a pair on which they split
stays `unverified`. A label the reference answer settled (`label_check`) is not asked again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from pipeline.engine.schema import ALIVE, REJECTED, SFT
from pipeline.engine.stage import BuildContext, decide, set_rows
from pipeline.rules.judge_prompt import evidence, swapped_messages
from pipeline.rules.labels import CONTESTED, TEACHERS, UNVERIFIED, VERIFIED
from pipeline.rules.trace_checks import check_response
from pipeline.rules.verdict import COST_CAP, SWAPPED, WINNER_TO_LABEL
from pipeline.teachers.client import TeacherResult
from pipeline.teachers.stage import Messages, TeacherStage

POLICIES = ("drop", "mark")


@dataclass(frozen=True)
class LabelAuditParams:
    # A pair every unhinted judgement contests: drop (rejected as contested_label, never asked
    # in pass 2) or mark (pass 2 may keep a trace, with label_status contested).
    sft: str = "drop"

    def check(self) -> str | None:
        if self.sft not in POLICIES:
            return (f"sft={self.sft!r}: set drop (rejected as contested_label) or mark (kept, "
                    "marked contested)")
        return None


class LabelAudit(TeacherStage):
    name = "label_audit"
    inputs = ("split", "winner", "prompt", "chosen", "rejected", "context_messages", "verdict",
              "teacher_model", "label_status", "label_evidence")
    outputs = ("audit", "audit_cached", "label_status", "label_evidence", "outcome", "reason",
               "detail", "decided_by")
    columns = {
        # the second unhinted judgement of a pair pass 1 judged wrong
        "audit": pa.struct([("teacher_model", pa.string()), ("verdict", pa.string()),
                            ("swapped", pa.bool_()), ("agrees", pa.bool_()),
                            ("prompt_tokens", pa.int64()), ("completion_tokens", pa.int64()),
                            ("cache_read_tokens", pa.int64())]),
        "audit_cached": pa.bool_()}
    run_only_columns = ("audit_cached",)
    reopens = ("verdict_filter",)
    Params = LabelAuditParams
    wants_columns = ("split", "outcome", "reason", "label_status")

    def __init__(self, params: Any, ctx: BuildContext) -> None:
        super().__init__(params, ctx)
        # a second opinion when one is configured, else the pass-1 teacher in the other order
        self.teacher_key = "audit" if ctx.cfg.get("audit") else "teacher"

    def projected_share(self, accuracy: float) -> float:
        return 1 - accuracy  # the pairs pass 1 got wrong

    def wants(self, row: dict[str, Any]) -> bool:
        return (row["split"] == SFT and row["outcome"] == REJECTED
                and row["reason"] == "wrong_verdict" and _open(row))

    @property
    def swapped(self) -> bool:
        return self.teacher_key == "teacher"

    def request(self, row: dict[str, Any]) -> Messages:
        if not self.swapped:
            return row["context_messages"]
        return swapped_messages(row, self.templates)

    def update(self, row: dict[str, Any], result: TeacherResult) -> dict[str, Any]:
        shown = SWAPPED[row["winner"]] if self.swapped else row["winner"]
        t = self.templates
        check = check_response(result.content, shown, result.error, result.finish_reason,
                               evidence(row, shown), t.system, t.min_quote_fidelity)
        if check.reason == COST_CAP:  # never asked: the pass-1 rejection stands
            return {"audit_cached": False}
        model = self.teacher_config().model
        agrees = check.verdict == WINNER_TO_LABEL[shown]
        out = {"audit": {"teacher_model": model, "verdict": check.verdict,
                         "swapped": self.swapped, "agrees": agrees,
                         "prompt_tokens": result.prompt_tokens,
                         "completion_tokens": result.completion_tokens,
                         "cache_read_tokens": result.cache_read_tokens},
               "audit_cached": result.cached}
        first = f"pass 1 ({row['teacher_model']})"
        second = (f"the swapped order ({model})" if self.swapped
                  else f"the audit teacher ({model})")
        if agrees or not check.verdict:
            said = "the chosen one" if agrees else f"no verdict ({check.reason})"
            return out | {"label_status": UNVERIFIED, "label_evidence":
                          f"{TEACHERS}: {first} chose the rejected answer, {second} {said}"}
        found = {"label_status": CONTESTED,
                 "label_evidence": f"{TEACHERS}: {first} and {second} both chose the rejected answer"}
        if self.params.sft == "drop":
            return out | found | decide(REJECTED, "contested_label", self.name,
                                        found["label_evidence"])
        return out | found

    def process(self, rows: pa.Table) -> pa.Table:
        out = super().process(rows)
        # a pair pass 1 judged right: the teachers agree with its label
        light = out.select(["split", "outcome", "label_status", "teacher_model"]).to_pylist()
        agreed = {i: {"label_status": VERIFIED,
                      "label_evidence": f"{TEACHERS}: pass 1 ({r['teacher_model']}) chose the "
                                        "chosen answer"}
                  for i, r in enumerate(light)
                  if r["split"] == SFT and r["outcome"] == ALIVE and _open(r)}
        return set_rows(out, agreed, ())


def _open(row: dict[str, Any]) -> bool:
    """A label no reference answer settled."""
    return row["label_status"] in (None, UNVERIFIED)

"""Quarantine pairs no judge should see: empty, mistyped, identical, mis-ordered (roles that do
not alternate) or over-long."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from pipeline.engine.schema import QUARANTINED
from pipeline.engine.stage import Stage, decide, map_rows

ROLES = {"system", "user", "assistant"}


@dataclass(frozen=True)
class ValidateParams:
    # Characters of prompt + both answers above which a pair is quarantined as too_long.
    max_chars: int = 32000

    def check(self) -> str | None:
        return None if self.max_chars > 0 else "max_chars must be > 0"


def visible(text: str) -> bool:
    """Whether a text has anything but white space and control or format characters (a field
    of NUL bytes is as empty as one of spaces)."""
    return any(not ch.isspace() and unicodedata.category(ch)[0] != "C" for ch in text)


def alternation_problem(prompt: list[dict[str, Any]]) -> str | None:
    """Where a prompt's roles break the order every chat template expects: an optional system
    turn first, then user and assistant in turn. Two turns of one role in a row render as two
    "Chatbot A:" turns and read as a conversation that did not happen. A source whose data
    splits one turn in several says so by merging them (`stages.sources.base.merged_turns`)."""
    for i, m in enumerate(prompt):
        role = m["role"]
        if role == "system":
            if i:
                return f"prompt[{i}].role='system' after the first turn: only the first may be"
            continue
        start = 1 if prompt[0]["role"] == "system" else 0
        expected = "user" if (i - start) % 2 == 0 else "assistant"
        if role != expected:
            before = prompt[i - 1]["role"] if i else "the start"
            return (f"prompt[{i}].role={role!r} follows {before!r}: roles must alternate (an "
                    f"optional system turn, then user and assistant in turn)")
    return None


def problem(row: dict[str, Any], max_chars: int) -> tuple[str, str] | None:
    """The first thing wrong with a canonical pair, as (reason, detail), or None."""
    for key in ("prompt", "chosen", "rejected"):
        msgs = row.get(key)
        if not msgs:
            return "empty_field", key
        for i, m in enumerate(msgs):
            if m.get("role") not in ROLES:
                return "bad_role", f"{key}[{i}].role={m.get('role')!r}"
            if not isinstance(m.get("content"), str):
                return "bad_type", f"{key}[{i}].content is not text"
            if not visible(m["content"]):
                return "empty_field", f"{key}[{i}].content has no visible text"
    order = alternation_problem(row["prompt"])
    if order:
        return "bad_role", order
    if row["prompt"][-1]["role"] != "user":
        return "prompt_not_ending_with_user", (f"the prompt's last turn is "
                                               f"{row['prompt'][-1]['role']!r}, not the user's")
    for key in ("chosen", "rejected"):
        if len(row[key]) != 1 or row[key][0]["role"] != "assistant":
            return "last_turn_not_assistant", f"{key} is not one assistant turn"
    if row["chosen"][0]["content"].strip() == row["rejected"][0]["content"].strip():
        return "identical_answers", "chosen == rejected"
    size = sum(len(m["content"]) for k in ("prompt", "chosen", "rejected") for m in row[k])
    if size > max_chars:
        return "too_long", f"{size} characters > validate.max_chars={max_chars}"
    return None


class Validate(Stage):
    name = "validate"
    inputs = ("prompt", "chosen", "rejected")
    outputs = ("outcome", "reason", "detail", "decided_by")
    Params = ValidateParams

    def process(self, rows: pa.Table) -> pa.Table:
        def one(row: dict[str, Any]) -> dict[str, Any]:
            found = problem(row, self.params.max_chars)
            return decide(QUARANTINED, found[0], self.name, found[1]) if found else {}

        return map_rows(rows, one)

"""Rows as they reach the teacher stages, and judging traces, for the tests of the stages and
rules that read traces."""

from __future__ import annotations

import pyarrow as pa

from pipeline.engine.schema import ALIVE, CANONICAL_COLUMNS, REJECTED, SFT, conform
from pipeline.rules.judge_prompt import judge_messages
from pipeline.settings import load_config

from conftest import messages

COLUMNS = (*CANONICAL_COLUMNS, "split", "winner", "context_messages", "trace", "teacher_model",
           "finish_reason", "prompt_tokens", "completion_tokens", "cache_read_tokens", "latency_s",
           "cached", "teacher_error", "pass_index", "verdict")


def trace(label: str, note: str = "Canberra is the capital.") -> str:
    return ("<type>Chat</type>\n<rubric>Accuracy (weight 100%)<justify>Facts decide a capital "
            f"question.</justify>\n</rubric>\n<eval><summary_A>names a city</summary_A> {note} "
            f"<summary_B>says Sydney</summary_B></eval>\n<answer>[[{label}]]</answer>")


def row(i: int, winner: str, split: str = SFT, **extra) -> dict:
    q = f"Question {i}: what is the capital of Australia?"
    good, bad = f"Canberra ({i}).", f"Sydney ({i})."
    cfg = load_config([])
    a, b = (good, bad) if winner == "model_a" else (bad, good)
    return {"pair_id": f"p{i}", "source": "s", "source_index": i, "outcome": ALIVE, "domain": "chat",
            "prompt": messages(("user", q)), "chosen": messages(("assistant", good)),
            "rejected": messages(("assistant", bad)), "split": split, "winner": winner,
            "context_messages": judge_messages(messages(("user", q)), a, b, cfg.prompt), **extra}


def table(rows: list[dict]) -> pa.Table:
    return conform(pa.Table.from_pylist(rows), COLUMNS)


def rejected_by_filter(i: int, winner: str, said: str) -> dict:
    return row(i, winner, trace=trace(said), teacher_model="judge-1", verdict=said,
               outcome=REJECTED, reason="wrong_verdict", decided_by="verdict_filter",
               prompt_tokens=100, completion_tokens=50, cached=False)

"""The trace checks on real judges' traces and on the adversarial set made from them: how many
good traces each check throws away, and how many flawed ones it catches.

    .venv/bin/python bench/trace_checks.py

Real traces: tests/data/traces/rmr1_rmb_logs.jsonl (RM-R1's released RMB logs); adversarial:
tests/data/traces/adversarial.jsonl. tests/rules/test_verdict_calibration.py pins the same numbers.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from pipeline.rules.verdict import check_response, score
from pipeline.settings import load_config

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "traces"


def load(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (DATA / name).open(encoding="utf-8")]


def real_traces() -> list[dict[str, Any]]:
    return load("rmr1_rmb_logs.jsonl")


def adversarial_traces() -> list[dict[str, Any]]:
    """Each adversarial row with the question, answers and winner of the real trace it edits."""
    by_origin = {json.dumps(r["origin"], sort_keys=True): r for r in real_traces()}
    rows = []
    for a in load("adversarial.jsonl"):
        real = by_origin[json.dumps(a["made_from"], sort_keys=True)]
        rows.append({**{k: real[k] for k in ("question", "answer_a", "answer_b", "winner")}, **a})
    return rows


def reason_of(row: dict[str, Any], instructions: str) -> str:
    """What the verdict filter decides on this trace, exactly as the stage calls it."""
    return check_response(row["trace"], row["winner"], answers=(row["answer_a"], row["answer_b"]),
                          instructions=instructions).reason


def table(instructions: str) -> str:
    lines = ["| traces | group | rows | kept | rejected, by reason |", "|---|---|---|---|---|"]
    groups: dict[tuple[str, str], Counter] = {}
    for r in real_traces():
        right = "right verdict" if score(r["trace"], r["winner"]) == 1 else "wrong verdict"
        groups.setdefault((f"real, {r['layout']} layout", right), Counter())[
            reason_of(r, instructions)] += 1
    for a in adversarial_traces():
        groups.setdefault(("adversarial", a["kind"]), Counter())[reason_of(a, instructions)] += 1
    for (kind, group), reasons in groups.items():
        rejected = ", ".join(f"{k} {n}" for k, n in sorted(reasons.items()) if k) or "none"
        lines.append(f"| {kind} | {group} | {sum(reasons.values())} | {reasons['']} | {rejected} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(load_config([]).prompt.system))

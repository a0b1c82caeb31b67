"""The trace checks on real judges' traces, on the adversarial set made from them, and on the
synthetic set of good and flawed shapes: how many good traces each check throws away, how many
flawed ones it catches, and each quote check's lowest fidelity.

    .venv/bin/python bench/trace_checks.py
    .venv/bin/python bench/trace_checks.py --min-quote-fidelity 0.8   # another threshold
    .venv/bin/python bench/trace_checks.py --fidelities               # every trace's lowest
    .venv/bin/python bench/trace_checks.py --speed 20                 # traces checked a second

Real traces: tests/data/traces/rmr1_rmb_logs.jsonl (RM-R1's released RMB logs); adversarial:
tests/data/traces/adversarial.jsonl; synthetic: tests/data/traces/synthetic.jsonl (ours).
tests/rules/test_verdict_calibration.py pins the same numbers. A set of your own in the same
row format (question, answer_a, answer_b, winner, trace) goes through `--file`.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

from pipeline.rules.trace_checks import MIN_QUOTE_FIDELITY, Evidence, TraceCheck, check_response
from pipeline.rules.verdict import score
from pipeline.settings import load_config

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "traces"


def load(path: str | Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (DATA / path).open(encoding="utf-8")]


def real_traces() -> list[dict[str, Any]]:
    return load("rmr1_rmb_logs.jsonl")


def synthetic_traces() -> list[dict[str, Any]]:
    return load("synthetic.jsonl")


def adversarial_traces() -> list[dict[str, Any]]:
    """Each adversarial row with the question, answers and winner of the real trace it edits."""
    by_origin = {json.dumps(r["origin"], sort_keys=True): r for r in real_traces()}
    rows = []
    for a in load("adversarial.jsonl"):
        real = by_origin[json.dumps(a["made_from"], sort_keys=True)]
        rows.append({**{k: real[k] for k in ("question", "answer_a", "answer_b", "winner")}, **a})
    return rows


def check(row: dict[str, Any], instructions: str,
          min_fidelity: float = MIN_QUOTE_FIDELITY) -> TraceCheck:
    """What the verdict filter decides on this trace, exactly as the stage calls it."""
    evidence = Evidence((row["answer_a"], row["answer_b"]), row.get("question") or "")
    return check_response(row["trace"], row["winner"], evidence=evidence,
                          instructions=instructions, min_fidelity=min_fidelity)


def reason_of(row: dict[str, Any], instructions: str,
              min_fidelity: float = MIN_QUOTE_FIDELITY) -> str:
    return check(row, instructions, min_fidelity).reason


def groups() -> dict[tuple[str, str], list[dict[str, Any]]]:
    """The calibration sets, each split into its groups (good or flawed, and of which kind)."""
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in real_traces():
        right = "right verdict" if score(r["trace"], r["winner"]) == 1 else "wrong verdict"
        out.setdefault((f"real, {r['layout']} layout", right), []).append(r)
    for a in adversarial_traces():
        out.setdefault(("adversarial", a["kind"]), []).append(a)
    for s in synthetic_traces():
        out.setdefault((f"synthetic, {s['group']}", s["kind"]), []).append(s)
    return out


def table(instructions: str, min_fidelity: float = MIN_QUOTE_FIDELITY,
          sets: dict[tuple[str, str], list[dict[str, Any]]] | None = None) -> str:
    lines = ["| traces | group | rows | kept | rejected, by reason | lowest quote fidelity |",
             "|---|---|---|---|---|---|"]
    for (kind, group), rows in (sets or groups()).items():
        checks = [check(r, instructions, min_fidelity) for r in rows]
        reasons = Counter(c.reason for c in checks)
        rejected = ", ".join(f"{k} {n}" for k, n in sorted(reasons.items()) if k) or "none"
        lows = [c.quote_fidelity for c in checks if c.quote_fidelity is not None]
        low = f"{min(lows):.2f}" if lows else "-"
        lines.append(f"| {kind} | {group} | {len(rows)} | {reasons['']} | {rejected} | {low} |")
    return "\n".join(lines)


def speed(instructions: str, repeats: int) -> str:
    """Traces checked a second on one core: the real and adversarial sets `repeats` times, each
    time with the answers made unique so that no cache of an answer's words helps."""
    rows = [*real_traces(), *adversarial_traces()]
    start, n = time.perf_counter(), 0
    for i in range(repeats):
        for r in rows:
            check(r | {"answer_a": f"{r['answer_a']} {i}", "answer_b": f"{r['answer_b']} {i}"},
                  instructions)
            n += 1
    took = time.perf_counter() - start
    return f"{n} traces in {took:.2f} s: {n / took:,.0f} traces/s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--min-quote-fidelity", type=float, default=MIN_QUOTE_FIDELITY)
    parser.add_argument("--file", type=Path, help="a JSONL set of your own, checked alone")
    parser.add_argument("--fidelities", action="store_true",
                        help="one line per trace: its reason and lowest quote fidelity")
    parser.add_argument("--speed", type=int, metavar="REPEATS",
                        help="time the checks over the real and adversarial sets")
    args = parser.parse_args()
    instructions = load_config([]).prompt.system
    if args.speed:
        print(speed(instructions, args.speed))
        return
    sets = {("file", args.file.name): load(args.file.resolve())} if args.file else groups()
    if args.fidelities:
        for (kind, group), rows in sets.items():
            for r in rows:
                c = check(r, instructions, args.min_quote_fidelity)
                print(f"{kind} | {group} | {c.reason or 'kept'} | {c.quote_fidelity} | "
                      f"{c.detail[:100]}")
        return
    print(table(instructions, args.min_quote_fidelity, sets))


if __name__ == "__main__":
    main()

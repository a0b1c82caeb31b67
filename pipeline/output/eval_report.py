"""What `rubricforge eval` leaves: every figure (eval.json), each judgement (Parquet), and a
Markdown report with a plot, for the people who would rather look than read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

JUDGEMENT_SCHEMA = pa.schema([
    ("benchmark", pa.string()), ("item", pa.string()), ("comparison", pa.string()),
    ("better_answer", pa.string()),  # where the better answer stood: A or B
    ("verdict", pa.string()), ("right", pa.bool_()), ("cached", pa.bool_()),
    ("error", pa.string()), ("trace", pa.string()),
])


def headline(b: dict[str, Any]) -> dict[str, float | None]:
    """The numbers a benchmark's score is the mean of: RewardBench's sections, RM-Bench's
    levels, RMB's goals, RewardBench 2's subsets."""
    if "hard" in b:
        return {k: b[k] for k in ("easy", "normal", "hard")}
    return b.get("sections") or b.get("goals") or (b["subsets"] if "left_out" in b else {})


def pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f}"


def write_eval_report(out: Path, report: dict[str, Any], judgements: list[dict[str, Any]]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "eval.json").write_text(json.dumps(report, indent=2) + "\n")
    pq.write_table(pa.Table.from_pylist(judgements, schema=JUDGEMENT_SCHEMA),
                   out / "judgements.parquet")
    _plot(out / "eval.png", report)
    (out / "eval.md").write_text(_markdown(report))


def _markdown(report: dict[str, Any]) -> str:
    t = report["teacher"]
    orders = ("both A/B orders (a comparison is right only when both are)"
              if report["both_orders"] else "one A/B order per comparison")
    lines = [f"# Judge evaluation: {t['model']}", "",
             f"Backend `{t['backend']}`"
             + (f", checkpoint `{t['checkpoint']}`" if t.get("checkpoint") else "")
             + f"; {orders}"
             + (f"; first {report['limit']} items per subset" if report["limit"] else "")
             + f". {report['judgements']} judgements, {report['errors']} failed (counted as wrong); "
             f"single-order verdict accuracy {pct(report['verdict_accuracy'])}%.", "",
             "| benchmark | score | items | comparisons right | swap agreement | made of |",
             "|---|---|---|---|---|---|"]
    for name, b in report["benchmarks"].items():
        parts = ", ".join(f"{k} {pct(v)}" for k, v in headline(b).items())
        lines.append(f"| {name} | {pct(b['score'])} | {b['items']} | {b['comparisons_right']}"
                     f" / {b['comparisons']} | {pct(b['swap_agreement'])} | {parts} |")
    lines += ["", "![scores](eval.png)", "",
              "Each judgement (benchmark, item, comparison, where the better answer stood, the "
              "verdict, right or not, the trace) is in `judgements.parquet`; every figure and the "
              "resolved config are in `eval.json`.", ""]
    return "\n".join(lines)


def _plot(path: Path, report: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    names = list(report["benchmarks"])
    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 3.6), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        b = report["benchmarks"][name]
        bars = {**headline(b), "score": b["score"], "swap agreement": b["swap_agreement"]}
        labels = list(bars)
        values = [100 * (v or 0) for v in bars.values()]
        colors = ["#4c72b0"] * (len(labels) - 2) + ["#2a9d55", "#dd8452"]
        ax.barh(labels[::-1], values[::-1], color=colors[::-1])
        ax.set_xlim(0, 100)
        ax.set_title(name)
        ax.set_xlabel("%")
    fig.tight_layout()
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)

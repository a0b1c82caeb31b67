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
    ("kind", pa.string()),  # pair, four (four answers at once) or rate (one answer rated)
    ("better_answer", pa.string()),  # where the better answer stood: A or B (A-D for four)
    ("drawn_order", pa.bool_()),  # the published protocol's order (false: the swapped one)
    ("verdict", pa.string()),  # the letter named, or the rating given
    ("right", pa.bool_()),  # null for a rating
    ("cached", pa.bool_()),
    ("error", pa.string()), ("trace", pa.string()),
])


def headline(b: dict[str, Any]) -> dict[str, float | None]:
    """The numbers a benchmark's score is the mean of: RewardBench's sections, RM-Bench's
    levels, RMB's goals, RewardBench 2's subsets."""
    if "hard" in b:
        return {k: b[k] for k in ("easy", "normal", "hard")}
    return b.get("sections") or b.get("goals") or (b["subsets"] if "protocol" in b else {})


def first_mean(b: dict[str, Any]) -> float | None:
    """A benchmark's mean when it has no score of its own (RewardBench 2 without Ties)."""
    return next((v for k, v in b.items() if k.startswith("mean_of_")), None)


def score_text(b: dict[str, Any]) -> str:
    """The score, or for RewardBench 2 without Ties its subset mean, marked as not the score."""
    return pct(b["score"]) if b["score"] is not None else f"({pct(first_mean(b))})"


def pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f}"


def write_eval_report(out: Path, report: dict[str, Any], judgements: list[dict[str, Any]]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "eval.json").write_text(json.dumps(report, indent=2) + "\n")
    pq.write_table(pa.Table.from_pylist(judgements, schema=JUDGEMENT_SCHEMA),
                   out / "judgements.parquet")
    _plot(out / "eval.png", report)
    (out / "eval.md").write_text(_markdown(report))


# What each benchmark's score here is, next to the leaderboard's (README: Evaluating a judge).
PROTOCOL_NOTES = {
    "rewardbench": "mean of the 4 sections, subsets weighted by the official counts; a missing "
                   "verdict 0.5 (RewardBench's generative harness); a section with no subset "
                   "judged counts 0, as in its code",
    "rm_bench": "mean of the 4 domains (each the mean of hard, normal, easy); a missing verdict 0",
    "rmb": "pairwise accuracy per goal, their mean; a missing verdict 0",
    "rmb_bon": "best-of-N: right when the chosen answer wins every comparison; per goal, their mean",
}
# RewardBench 2 by `eval.rb2_protocol`
RB2_NOTES = {
    "best_of_four": "its leaderboard's protocol: the mean of the six subsets; five judged by "
                    "one judgement naming the best of four answers (0.25 without a verdict), "
                    "Ties by rating each answer, with its own aggregate",
    "ratings": "the mean of the six subsets, every answer rated 1-10 alone (1/k when the correct "
               "answer shares the top rating with k-1 others; 0.25 without a rating), Ties with "
               "its own aggregate",
    "pairwise": "not the RewardBench 2 score: asked pairwise (eval.rb2_protocol=pairwise), Ties "
                "cannot be judged; the mean of the other subsets, each item right when the "
                "correct answer beats all three (1/k for a k-way tie; a missing verdict is a tie)",
}


def note(name: str, b: dict[str, Any]) -> str:
    """What a benchmark's score here is."""
    if "protocol" in b:
        said = RB2_NOTES[b["protocol"]]
        missing = [s for s in b.get("not_judged", []) if b["protocol"] != "pairwise"]
        return said + (f"; no score: {', '.join(missing)} not judged" if missing else "")
    return PROTOCOL_NOTES.get(name, "")


def _markdown(report: dict[str, Any]) -> str:
    t, proto = report["teacher"], report["protocol"]
    lines = [f"# Judge evaluation: {t['model']}", "",
             f"Backend `{t['backend']}`"
             + (f", checkpoint `{t['checkpoint']}`" if t.get("checkpoint") else "")
             + f"; the published protocol: one judgement per comparison, the better answer "
             f"placed as A or B by a draw from seed {proto['seed']} (each judgement records "
             "where)"
             + ("; both orders asked too: the stricter figure and the swap agreement beside it"
                if proto["both_orders_asked"] else "")
             + (f"; first {report['limit']} items per subset" if report["limit"] else "")
             + f". {report['judgements']} judgements, {report['errors']} failed, "
             f"{report['no_verdict']} without a verdict; single-order verdict accuracy "
             f"{pct(report['verdict_accuracy'])}%.", "",
             "| benchmark | score | made of | both orders | swap agreement | items | "
             "comparisons right | what the score is |",
             "|---|---|---|---|---|---|---|---|"]
    for name, b in report["benchmarks"].items():
        parts = ", ".join(f"{k} {pct(v)}" for k, v in headline(b).items())
        both = b["both_orders"]
        strict = "-" if not both else score_text(both)
        lines.append(f"| {name} | {score_text(b)} | {parts} | {strict} | "
                     f"{pct(b['swap_agreement'])} | {b['items']} | {b['comparisons_right']} / "
                     f"{b['comparisons']} | {note(name, b)} |")
    if "rmb_four_sets" in report:
        four = report["rmb_four_sets"]
        lines += ["", f"RMB as its paper reports it, the mean of four sets: "
                  f"**{pct(four['score'])}** ("
                  + ", ".join(f"{k} {pct(v)}" for k, v in four["sets"].items()) + ")."]
    lines += ["", "![scores](eval.png)", "",
              "Each judgement (benchmark, item, comparison, where the better answer stood, whether "
              "that was the drawn order, the verdict, right or not, the trace) is in "
              "`judgements.parquet`; every figure and the resolved config are in `eval.json`.", ""]
    return "\n".join(lines)


def _plot(path: Path, report: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    names = list(report["benchmarks"])
    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 3.6), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        b = report["benchmarks"][name]
        total = ("score", b["score"]) if b["score"] is not None else ("subset mean (not the score)",
                                                                      first_mean(b))
        bars = {**headline(b), total[0]: total[1], "swap agreement": b["swap_agreement"]}
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

"""PNG plots for the dataset card: where rows went, how often the teacher was right, and how
long its traces are. People read these faster than the tables beside them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

from pipeline.output.manifest import Tally  # noqa: E402
from pipeline.rules.cues import CUE_NAMES  # noqa: E402


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    # no timestamps or software tag in the file: same data, same bytes
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)
    return path


def draw_plots(assets: Path, m: dict[str, Any], tally: Tally) -> list[tuple[str, Path]]:
    assets.mkdir(parents=True, exist_ok=True)
    out = []

    fig, ax = plt.subplots(figsize=(7, 0.45 * len(m["stages"]) + 1.2))
    names = [s["stage"] for s in m["stages"]][::-1]
    ax.barh(names, [s["rows_out"] for s in m["stages"]][::-1], color="#4c72b0", label="rows out")
    ax.barh(names, [sum(s["removed"].values()) for s in m["stages"]][::-1],
            left=[s["rows_out"] for s in m["stages"]][::-1], color="#dd8452", label="removed")
    ax.set_xlabel("rows")
    ax.set_title("Funnel: rows through each stage")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=2, frameon=False)
    out.append(("Funnel", _save(fig, assets / "funnel.png")))

    accuracy = m["quality"]["verdict_accuracy"]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    if accuracy:
        labels = [f"{q['source']}\npass {q['pass']}" for q in accuracy]
        ax.bar(labels, [q["accuracy"] or 0 for q in accuracy], color="#55a868")
        # source names are long: turned, so that neighbours do not overlap
        ax.tick_params(axis="x", labelrotation=30, labelsize=8)
        for label in ax.get_xticklabels():
            label.set_horizontalalignment("right")
        for i, q in enumerate(accuracy):
            ax.text(i, (q["accuracy"] or 0) + 0.02, f"{q['verdict_correct']}/{q['judged']}",
                    ha="center")
    else:
        ax.text(0.5, 0.5, "no pair was sent to the teacher", ha="center", transform=ax.transAxes)
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("verdict accuracy")
    ax.set_title("Teacher verdicts matching the known preference")
    out.append(("Verdict accuracy per source", _save(fig, assets / "accuracy.png")))

    fig, ax = plt.subplots(figsize=(7, 3.5))
    lengths = tally.trace_tokens
    if lengths["kept"] or lengths["rejected"]:
        ax.hist([lengths["kept"], lengths["rejected"]], bins=30, stacked=True,
                label=["kept", "rejected"], color=["#4c72b0", "#c44e52"])
        ax.legend()
    else:
        ax.text(0.5, 0.5, "no traces", ha="center", transform=ax.transAxes)
    ax.set_xlabel("completion tokens per trace")
    ax.set_ylabel("traces")
    ax.set_title("Trace length")
    out.append(("Trace length", _save(fig, assets / "trace_length.png")))

    cues = [c for c in m["quality"].get("cues", []) if c["share"] is not None]
    fig, ax = plt.subplots(figsize=(9, 0.32 * len(cues) + 1.4))
    if cues:
        labels = [f"{c['part']}/{c['source']}: {CUE_NAMES[c['cue']]}" for c in cues][::-1]
        shares = [100 * c["share"] for c in cues][::-1]
        errors = [[100 * (c["share"] - c["interval"][0]) for c in cues][::-1],
                  [100 * (c["interval"][1] - c["share"]) for c in cues][::-1]]
        ax.barh(labels, shares, xerr=errors, color="#4c72b0", ecolor="#333333", capsize=2)
        ax.axvline(50, color="#c44e52", linestyle="--", linewidth=1)
        ax.set_xlim(0, 100)
    else:
        ax.text(0.5, 0.5, "no pair kept", ha="center", transform=ax.transAxes)
    ax.set_xlabel("% of the pairs that differ in it (95% interval); 50%: no cue")
    ax.set_title("Cues other than quality in the kept pairs")
    out.append(("Cues", _save(fig, assets / "cues.png")))
    return out


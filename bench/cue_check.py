"""Cues planted at known rates in the scale benchmark's data: does the build's cue report find
them, and does `cue_balance` bring them to its tolerance?

    .venv/bin/python bench/cue_check.py --scale 0.2

1. Writes the scale benchmark's synthetic files (bench/scale_data.py) and rewrites the answers
   of two sources so that, among the pairs whose answers differ in a cue, the chosen answer
   has more of it at a planted rate (`PLANTED`): it is the longer one (in words, each one
   token of the embedded tokenizer), it has more markdown (a list and a bold span), it has
   more code blocks. Math-Step-DPO is left as written (no cue planted).
2. Builds `rmr1` on them three times, all pairs to `rl` (`distill_fraction=0`: the cue report
   reads kept pairs, and no teacher is needed): as is, with `cue_balance` on length, and with
   `cue_balance` on markdown plus `rrm_augment` (fraction 0.1, for what it costs in rows).
3. Prints, per source and cue, the planted rate, the reported share and its 95% interval, and
   whether the interval holds the planted rate; then the balanced shares against the tolerance
   and the rows each option cost. Exits 1 when a planted rate is outside its interval or a
   balanced share outside the tolerance.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.measure import machine  # noqa: E402
from bench.scale_bench import run_build  # noqa: E402
from bench.scale_data import data_overrides, write_all  # noqa: E402

# Per source and cue, the share of the pairs differing in the cue whose chosen answer has more
# of it; the share of pairs made to differ in markdown and in code blocks.
PLANTED = {"skywork": {"longer": 0.80, "more_markdown": 0.70, "more_code_blocks": 0.30},
           "code_preference_pairs": {"longer": 0.65, "more_markdown": 0.50,
                                     "more_code_blocks": 0.75}}
DIFFER = 0.6
# The answer columns of each source's files: (chosen, rejected) and how an answer is read
ANSWERS = {"skywork": ("chosen", "rejected"), "code_preference_pairs": ("accepted", "rejected")}
TOLERANCE = 0.05


def _markdown(text: str) -> str:
    words = text.split()
    third = max(1, len(words) // 3)
    items = [" ".join(words[k:k + third]) for k in range(0, len(words), third)]
    return f"**{items[0]}**\n" + "\n".join(f"- {item}" for item in items[1:])


def _code(text: str) -> str:
    words = text.split()
    half = len(words) // 2
    return " ".join(words[:half]) + "\n```\n" + " ".join(words[half:]) + "\n```"


def plant(chosen: list[str], rejected: list[str], rates: dict[str, float],
          rng: np.random.Generator) -> tuple[list[str], list[str]]:
    """The answers with each cue planted: markdown and code on one side of a `DIFFER` share of
    the pairs (the chosen side at the rate), then lengths ordered at the rate (the shorter side
    padded with its own words until it is longer by at least 8)."""
    c_out, r_out = [], []
    for c, r in zip(chosen, rejected, strict=True):
        if not c.split() or not r.split():  # an empty answer, to be quarantined: left as is
            c_out.append(c)
            r_out.append(r)
            continue
        for cue, dress in (("more_markdown", _markdown), ("more_code_blocks", _code)):
            if rng.random() < DIFFER:
                if rng.random() < rates[cue]:
                    c = dress(c)
                else:
                    r = dress(r)
        want_chosen_longer = rng.random() < rates["longer"]
        short, long_ = (c, r) if want_chosen_longer else (r, c)
        need = len(long_.split()) + 8 - len(short.split())
        if need > 0:
            pad = short.split()
            short += " " + " ".join(pad[k % len(pad)] for k in range(need))
        c, r = (short, long_) if want_chosen_longer else (long_, short)
        c_out.append(c)
        r_out.append(r)
    return c_out, r_out


def plant_files(data: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for source, (c_col, r_col) in ANSWERS.items():
        for path in sorted((data / source).glob("*.parquet")):
            table = pq.read_table(path)
            if source == "skywork":  # message lists: the last turn is the answer
                c_msgs, r_msgs = (table.column(k).to_pylist() for k in (c_col, r_col))
                c, r = plant([m[-1]["content"] for m in c_msgs], [m[-1]["content"] for m in r_msgs],
                             PLANTED[source], rng)
                for msgs, texts in ((c_msgs, c), (r_msgs, r)):
                    for m, t in zip(msgs, texts, strict=True):
                        m[-1]["content"] = t if m[-1]["content"] else ""  # keep the empty ones
                new = {c_col: c_msgs, r_col: r_msgs}
            else:
                given = [table.column(k).to_pylist() for k in (c_col, r_col)]
                c, r = plant(*given, PLANTED[source], rng)
                # rows written with identical answers (to be quarantined) stay identical
                r = [a if a0 == b0 else b for a, b, a0, b0 in zip(c, r, *given, strict=True)]
                new = {c_col: c, r_col: r}
            for name, values in new.items():
                i = table.column_names.index(name)
                table = table.set_column(i, name, pa.array(values, table.schema.field(i).type))
            pq.write_table(table, path)


def cues(manifest: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(c["source"], c["cue"]): c for c in manifest["quality"]["cues"] if c["part"] == "rl"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=0.2, help="multiple of the published sizes")
    ap.add_argument("--work", type=Path, default=Path("/tmp/rubricforge-cues"))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    data = args.work / "data"
    write_all(data, args.scale, args.seed)
    plant_files(data, args.seed + 1)
    common = ["recipe=rmr1", *data_overrides(data), "recipe.stages.split.distill_fraction=0",
              f"teacher.cache_dir={args.work}/cache",
              f"++recipe.stages.near_dedup.cache_dir={args.work}/minhash",
              f"++recipe.stages.token_lengths.cache_dir={args.work}/token_counts"]
    runs = {"as is": [],
            "cue_balance longer": [f"recipe.stages.cue_balance={{cue: longer, tolerance: {TOLERANCE}}}"],
            "cue_balance more_markdown + rrm_augment": [
                f"recipe.stages.cue_balance={{cue: more_markdown, tolerance: {TOLERANCE}}}",
                "recipe.stages.rrm_augment={fraction: 0.1}"]}
    manifests = {}
    for k, (name, extra) in enumerate(runs.items()):
        out = args.work / f"out{k}"
        run = run_build([*common, *extra, f"output.dir={out}"], args.work / f"build{k}.log")
        manifests[name] = json.loads((out / "manifest.json").read_text())
        print(f"{name}: {run['wall_s']} s")
    failed = []
    plain = cues(manifests["as is"])
    print(f"\nmachine: {machine()}; scale {args.scale}\n")
    print("| source | cue | planted | reported (pairs that differ) | 95% interval | holds |")
    print("|---|---|---|---|---|---|")
    for source, rates in PLANTED.items():
        for cue, rate in rates.items():
            c = plain[(source, cue)]
            low, high = c["interval"]
            holds = low <= rate <= high
            failed += [] if holds else [f"{source} {cue}"]
            unit = f" ({c['unit']})" if c.get("unit") else ""
            print(f"| {source} | {cue}{unit} | {rate:.0%} | {c['share']:.1%} ({c['differ']:,}) | "
                  f"{low:.1%} - {high:.1%} | {'yes' if holds else 'NO'} |")
    print("\n| build | source | cue | share before | share after | allowed | rows cut | rows added |")
    print("|---|---|---|---|---|---|---|---|")
    for name, cue in (("cue_balance longer", "longer"),
                      ("cue_balance more_markdown + rrm_augment", "more_markdown")):
        m = manifests[name]
        after = cues(m)
        cut = {r["source"]: r["rows"] for r in m["reasons"] if r["reason"] == "cue_balance"}
        order = [s["stage"] for s in m["stages"]]
        later = order[order.index("cue_balance") + 1:]
        for source in [*PLANTED, "math_step_dpo"]:
            c, before = after[(source, cue)], plain[(source, cue)]["share"]
            if c["share"] is None:
                continue
            # the cut is exact where it runs; each pair a later stage rejects (an over-long
            # prompt) can move the kept share by at most one pair in `differ`
            moved = sum(r["rows"] for r in m["reasons"]
                        if r["source"] == source and r["stage"] in later)
            allowed = TOLERANCE + moved / c["differ"]
            ok = abs(c["share"] - 0.5) <= allowed + 1e-4
            failed += [] if ok else [f"{name}: {source}"]
            print(f"| {name} | {source} | {cue} | {before:.1%} | {c['share']:.2%} | "
                  f"50% +- {allowed:.2%} {'yes' if ok else 'NO'} | {cut.get(source, 0):,} | "
                  f"{m['added'].get(source + '+rrm', 0):,} |")
        if not m["balanced"]:
            failed.append(f"{name}: accounting")
    print("\nrows kept in rl: " + ", ".join(f"{n}: {m['totals']['kept_rl']:,}"
                                            for n, m in manifests.items()))
    if failed:
        sys.exit(f"FAILED: {', '.join(failed)}")


if __name__ == "__main__":
    main()

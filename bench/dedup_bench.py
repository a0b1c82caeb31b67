"""Near-duplicate removal: quality on injected pairs, throughput and peak memory.

    .venv/bin/python bench/dedup_bench.py --pairs 73000
    .venv/bin/python bench/dedup_bench.py --pairs 1000000

Prints one Markdown table row for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.measure import machine, run_stage  # noqa: E402
from bench.synth_pairs import generate  # noqa: E402
from pipeline.engine.schema import CANONICAL_COLUMNS, DEDUPLICATED, conform  # noqa: E402
from pipeline.engine.stage import BuildContext  # noqa: E402
from pipeline.rules.keys import normalize  # noqa: E402
from pipeline.settings import load_config  # noqa: E402
from stages.near_dedup import (  # noqa: E402
    NearDedup,
    NearDedupParams,
    _signatures,
    bands_rows,
    jaccard,
    shingles,
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=73_000)
    ap.add_argument("--threshold", type=float, default=0.85)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    t = time.monotonic()
    rows, injected = generate(args.pairs, seed=args.seed)
    table = conform(pa.Table.from_pylist(rows), CANONICAL_COLUMNS)
    texts = [r["prompt"][0]["content"] for r in rows]
    del rows
    gen_s = time.monotonic() - t

    params = NearDedupParams(threshold=args.threshold)
    bands, rows_per_band = bands_rows(params.threshold, params.num_perm)
    sample = table.slice(0, min(5000, table.num_rows))
    t = time.monotonic()
    _signatures(sample, params, bands, rows_per_band, [])
    sig_rate = sample.num_rows / (time.monotonic() - t)

    stage = NearDedup(params, BuildContext(load_config([])))
    result, run_s, peak = run_stage(stage, table, ["source_index", "outcome", "dup_of"])

    index = result.column("source_index").to_pylist()
    outcome = dict(zip(index, result.column("outcome").to_pylist(), strict=True))
    dup_of = dict(zip(index, result.column("dup_of").to_pylist(), strict=True))

    def keeper(i: int) -> int:
        return int(dup_of[i][1:]) if outcome[i] == DEDUPLICATED else i

    target = [p for p in injected if p.jaccard >= args.threshold]
    found = sum(keeper(p.copy) == keeper(p.original) for p in target)
    removed = [i for i, o in outcome.items() if o == DEDUPLICATED]

    def similarity(a: int, b: int) -> float:
        return jaccard(*(shingles(normalize(texts[x]), params.ngram) for x in (a, b)))

    # a removal is right when the removed prompt really is a near copy of the one kept
    right = sum(similarity(i, keeper(i)) >= args.threshold - 0.1 for i in removed)
    recall = found / len(target) if target else float("nan")
    precision = right / len(removed) if removed else float("nan")
    print(f"machine: {machine()}; generated in {gen_s:.0f}s")
    print(f"injected pairs: {len(injected)} ({len(target)} with Jaccard >= {args.threshold}); "
          f"removed: {len(removed)}; bands x rows: {bands} x {rows_per_band}")
    print("| pairs | signatures/s per core | near-dedup wall (s) | pairs/s | peak memory (GiB) "
          "| recall (J >= t) | precision |")
    print(f"| {args.pairs:,} | {sig_rate:,.0f} | {run_s:.0f} | {args.pairs / run_s:,.0f} | "
          f"{peak / 2**30:.1f} | {recall:.3f} | {precision:.3f} |")


if __name__ == "__main__":
    main()

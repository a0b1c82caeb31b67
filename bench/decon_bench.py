"""Benchmark decontamination: recall on injected leaks by kind, throughput and peak memory.

    .venv/bin/python bench/decon_bench.py --pairs 73000
    .venv/bin/python bench/decon_bench.py --pairs 1000000

A synthetic benchmark (written as a RewardBench-schema JSONL file and read through the stage's
own `datasets` path) leaks into 1% of the pairs: verbatim, re-spaced, re-cased, lightly edited,
or embedded in a longer prompt. Prints Markdown table rows for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.measure import machine, run_stage  # noqa: E402
from bench.synth_pairs import LEAK_KINDS, benchmark_texts, generate, inject_leaks  # noqa: E402
from pipeline.engine.schema import CANONICAL_COLUMNS, REJECTED, conform  # noqa: E402
from pipeline.engine.stage import BuildContext  # noqa: E402
from pipeline.rules.ngrams import NgramIndex  # noqa: E402
from pipeline.settings import load_config  # noqa: E402
from stages.decontaminate import Decontaminate, DecontaminateParams  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=73_000)
    ap.add_argument("--benchmark-prompts", type=int, default=10_000,
                    help="about the four reward benchmarks together")
    ap.add_argument("--share", type=float, default=0.01, help="share of pairs that leak")
    ap.add_argument("--ngram", type=int, default=13)
    args = ap.parse_args()

    t = time.monotonic()
    rows, _ = generate(args.pairs, dup_share=0.0, seed=0)
    bench = benchmark_texts(args.benchmark_prompts)
    leaks = inject_leaks(rows, bench, args.share)
    table = conform(pa.Table.from_pylist(rows), CANONICAL_COLUMNS)
    del rows
    gen_s = time.monotonic() - t

    t = time.monotonic()
    index = NgramIndex.build(args.ngram, {"synthetic": enumerate(bench)})
    index_s = time.monotonic() - t

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "benchmark.jsonl"
        with path.open("w") as f:
            for i, text in enumerate(bench):
                f.write(json.dumps({"prompt": text, "chosen": "", "chosen_model": "",
                                    "rejected": "", "rejected_model": "", "subset": "s",
                                    "id": i}) + "\n")
        cfg = load_config(["recipe.use_samples=false",
                           f"benchmarks.rewardbench.data_files={path}"])
        stage = Decontaminate(DecontaminateParams(ngram=args.ngram, benchmarks=["rewardbench"]),
                              BuildContext(cfg))
        result, run_s, peak = run_stage(stage, table, ["source_index", "outcome"])

    index_of = result.column("source_index").to_pylist()
    removed = {i for i, o in zip(index_of, result.column("outcome").to_pylist(), strict=True)
               if o == REJECTED}
    leaked = {leak.row for leak in leaks}
    total, found = Counter(), Counter()
    for leak in leaks:
        size = "long" if leak.words >= args.ngram else "short"
        for key in (leak.kind, f"{leak.kind}/{size}"):
            total[key] += 1
            found[key] += leak.row in removed
    false_pos = len(removed - leaked)

    print(f"machine: {machine()}; generated in {gen_s:.0f}s; benchmark: "
          f"{args.benchmark_prompts:,} prompts, {len(index.grams):,} {args.ngram}-grams, "
          f"index built in {index_s:.1f}s")
    print("| pairs | decontaminate wall (s) | pairs/s | peak memory (GiB) | leaks | "
          + " | ".join(f"recall {k}" for k in LEAK_KINDS) + " | false positives |")
    print(f"| {args.pairs:,} | {run_s:.0f} | {args.pairs / run_s:,.0f} | {peak / 2**30:.1f} | "
          f"{len(leaks):,} | " + " | ".join(f"{found[k] / total[k]:.3f}" for k in LEAK_KINDS)
          + f" | {false_pos} |")
    print("recall by benchmark prompt length (long: >= n words, short: < n):")
    for kind in LEAK_KINDS:
        parts = [f"{size} {found[f'{kind}/{size}']}/{total[f'{kind}/{size}']}"
                 for size in ("long", "short") if total[f"{kind}/{size}"]]
        print(f"  {kind}: " + ", ".join(parts))


if __name__ == "__main__":
    main()

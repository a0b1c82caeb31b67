"""`rubricforge eval` at full size: every RMB pairwise item, both orders, against a loopback judge.

    .venv/bin/python bench/eval_bench.py --rmb-dir <RMB checkout>/RMB_dataset/Pairwise_set

RMB's 49 pairwise files (14.5K items, 29K requests: the drawn order and, with
`eval.both_orders`, the other) are read through
`benchmarks.rmb.data_files` like a user's offline copy. The judge is a loopback OpenAI-compatible
server that answers at once with a verdict drawn from a hash of the request, so the run measures
rubricforge's own path (reading, rendering, the cache, the client, scoring), and the scores are
a check of the rule: a random judge is right half of the time in the drawn order, in both
orders a quarter of the time, and agrees with itself across orders half of the time. Prints a
Markdown row for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from bench.measure import machine  # noqa: E402

from fake_openai import FakeOpenAI, completion  # noqa: E402

TRACE = ("<type>Chat</type>\n<rubric>Accuracy (weight 100%)<justify>Facts decide.</justify>\n"
         "</rubric>\n<eval><summary_A>first</summary_A> vs <summary_B>second</summary_B>.</eval>"
         "\n<answer>[[{}]]</answer>")


def coin_judge(body: dict, n: int):
    text = body["messages"][-1]["content"]
    return completion(TRACE.format("AB"[hashlib.sha256(text.encode()).digest()[0] % 2]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rmb-dir", required=True, help="RMB's Pairwise_set directory")
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--limit", type=int, default=None, help="items per category (default all)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp, FakeOpenAI(coin_judge) as server:
        cmd = [sys.executable, "-m", "pipeline.cli", "eval", "eval.benchmarks=[rmb]",
               f"benchmarks.rmb.data_files={args.rmb_dir}/**/*.json", "teacher=openai",
               "teacher.model=coin", f"teacher.base_url={server.base_url}",
               f"teacher.concurrency={args.concurrency}", f"teacher.cache_dir={tmp}/cache",
               f"eval.output_dir={tmp}/eval", "eval.both_orders=true",
               *([f"eval.limit={args.limit}"] if args.limit else [])]
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
        timings = {}
        for run in ("cold", "warm"):
            start = time.monotonic()
            done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
            timings[run] = time.monotonic() - start
            if done.returncode != 0:
                sys.exit(done.stderr[-3000:])
        report = json.loads((Path(tmp) / "eval" / "eval.json").read_text())
    rmb = report["benchmarks"]["rmb"]
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
    print(f"machine: {machine()}")
    print("| items | requests | cold (s) | warm (s) | score (drawn order) | score (both orders) "
          "| swap agreement | largest process RSS (GiB) |")
    print(f"| {rmb['items']:,} | {report['judgements']:,} | {timings['cold']:.0f} | "
          f"{timings['warm']:.0f} | {rmb['score']:.3f} | {rmb['both_orders']['score']:.3f} | "
          f"{rmb['swap_agreement']:.3f} | {peak:.1f} |")


if __name__ == "__main__":
    main()

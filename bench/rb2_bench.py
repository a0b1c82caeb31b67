"""`rubricforge eval` on RewardBench 2 at full size, in each protocol, against a loopback judge.

    .venv/bin/python bench/rb2_bench.py --work /tmp/rb2

A Hub-schema file of RewardBench 2's published size (1,865 items; Ties as ref:/tied: pairs of
items; bench/scale_data.py) is read through `benchmarks.rewardbench2.data_files`. For each
`eval.rb2_protocol` (best_of_four, ratings, pairwise) it prints what `--estimate` says, then runs
the eval cold and again warm (every answer cached). The judge is a loopback OpenAI-compatible
server answering at once with a letter or a rating drawn from a hash of the request, so the
times measure rubricforge's own path and the figures check the rules: a random judge names the
correct one of four a quarter of the time, shares the top of four uniform ratings a quarter of
the time, and wins three coin-flip comparisons an eighth of the time. Prints Markdown for
bench/RESULTS.md and writes `<work>/rb2-bench.json`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from bench.measure import machine  # noqa: E402
from bench.scale_data import Words, write_benchmarks  # noqa: E402

from fake_openai import FakeOpenAI, completion  # noqa: E402

PROTOCOLS = ("best_of_four", "ratings", "pairwise")
HEAD = "<type>Chat</type>\n<rubric>Accuracy (weight 100%)<justify>Facts decide.</justify>\n</rubric>\n"


def coin_judge(body: dict, n: int):
    """A letter (of two or four) or a rating from 1 to 10, drawn from the request's hash."""
    text = body["messages"][-1]["content"]
    draw = hashlib.sha256(text.encode()).digest()[0]
    if "[The Start of the Chatbot's Response]" in text:
        return completion(f"{HEAD}<eval><summary>it answers</summary></eval>\n"
                          f"<answer>{1 + draw % 10}</answer>")
    letters = "ABCD" if "[The Start of Chatbot D" in text else "AB"
    return completion(f"{HEAD}<eval><summary_A>first</summary_A> and the others.</eval>\n"
                      f"<answer>[[{letters[draw % len(letters)]}]]</answer>")


def run(args: list[str]) -> tuple[subprocess.CompletedProcess, float]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "pipeline.cli", "eval", *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=3600)
    if done.returncode:
        sys.exit((done.stdout + done.stderr)[-3000:])
    return done, time.monotonic() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--concurrency", type=int, default=64)
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    write_benchmarks(args.work, 1.0, Words(0))
    results = {}
    with FakeOpenAI(coin_judge) as server:
        for protocol in PROTOCOLS:
            common = ["eval.benchmarks=[rewardbench2]",
                      f"benchmarks.rewardbench2.data_files={args.work / 'rewardbench2.jsonl'}",
                      "teacher=openai", "teacher.model=coin", f"teacher.base_url={server.base_url}",
                      f"teacher.concurrency={args.concurrency}",
                      f"teacher.cache_dir={args.work / 'cache'}",
                      f"eval.output_dir={args.work / protocol}", f"eval.rb2_protocol={protocol}"]
            estimate, _ = run([*common, "--estimate"])
            said = next(x for x in estimate.stdout.splitlines() if x.startswith("requests:"))
            _, cold = run(common)
            warm_run, warm = run(common)
            report = json.loads((args.work / protocol / "eval.json").read_text())
            b = report["benchmarks"]["rewardbench2"]
            results[protocol] = {"estimate": said, "judgements": report["judgements"],
                                 "cold_s": round(cold, 1), "warm_s": round(warm, 1),
                                 "score": b["score"], "subsets": b["subsets"],
                                 "summary": warm_run.stdout.strip().splitlines()[-4:]}
            print(f"{protocol}: {cold:.0f} s cold, {warm:.0f} s warm", flush=True)
    (args.work / "rb2-bench.json").write_text(json.dumps(
        {"machine": machine(), "command": " ".join(sys.argv), "results": results}, indent=1))
    print("| protocol | `--estimate` | judgements | cold s | warm s | Factuality | Precise IF | "
          "Math | Safety | Focus | Ties | score |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for protocol, r in results.items():
        s = r["subsets"]
        cells = " | ".join("-" if s.get(k) is None else f"{s[k]:.3f}" for k in (
            "Factuality", "Precise IF", "Math", "Safety", "Focus", "Ties"))
        score = "-" if r["score"] is None else f"{r['score']:.4f}"
        print(f"| {protocol} | {r['estimate'].removeprefix('requests: ')} | {r['judgements']:,} | "
              f"{r['cold_s']:.0f} | {r['warm_s']:.0f} | {cells} | {score} |")


if __name__ == "__main__":
    main()

"""Labels flipped at known rates: how many wrong labels the label checks find, and how many are
left in `sft` and `rl`.

    .venv/bin/python bench/label_flips.py --work /tmp/flips --scale 0.1

1. Scale data for the `rmr1` sources (bench/scale_data.py), each source's labels flipped
   (chosen and rejected swapped) for a seeded share of its rows (`--flips`).
2. A loopback judge (bench/slow_api.py) that knows which answer is truly the better one and
   names it with accuracy p per source (`--accuracy`), each request drawn on its own (the
   swapped order and another model are new draws). Given the pass-2 hint it argues for the
   label, right or wrong, as RM-R1's pass 2 asks.
3. Three builds of `recipe=rmr1` sharing one teacher cache: `reference` (the label check
   against Math-Step-DPO's reference answer, the default); `+ swapped` (label_audit: each pair
   pass 1 judged wrong is judged again with A and B swapped); `+ audit` (label_audit asking an
   audit teacher with the same accuracies instead).

For each build and source: the flips that reached the label checks, the pairs contested (by
evidence, with how many were truly flipped: precision), the share of the flips found (recall),
the flips left in `sft` and `rl`, the rows kept, and what the audit cost in calls. Markdown for
bench/RESULTS.md is printed; everything is written to `<work>/label-flips.json`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import slow_api  # noqa: E402
from bench.measure import machine  # noqa: E402
from bench.scale_data import data_overrides, write_all  # noqa: E402

SOURCES = ("skywork", "code_preference_pairs", "math_step_dpo")
# the columns that hold each source's two answers, swapped to flip a label
ANSWERS = {"skywork": [("chosen", "rejected")],
           "code_preference_pairs": [("accepted", "rejected")],
           "math_step_dpo": [("chosen", "rejected"), ("full_chosen", "full_rejected")]}
VARIANTS = {"reference": [],
            "+ swapped": ["recipe.stages.label_audit={}"],
            "+ audit": ["recipe.stages.label_audit={}", "+audit=openai", "audit.model=bench-audit"]}
EARLY = {"contaminated", "excluded_subset"}  # rejected before the label checks


def shown(text: str) -> str:
    """An answer as the judge reads it back from a request (bench/slow_api.py)."""
    return " ".join(text.replace("<", " ").split())


def digest(text: str) -> str:
    return hashlib.sha256(shown(text).encode()).hexdigest()[:20]


class TruthJudge:
    """Names the truly better answer with the accuracy of the source it belongs to."""

    def __init__(self, truth: dict[str, tuple[str, bool]], accuracy: dict[str, float]) -> None:
        self.truth, self.accuracy = truth, accuracy  # answer digest -> (source, truly better)

    def __call__(self, model: str, text: str) -> str:
        known = self.truth.get(digest(slow_api.first_words("A", text, 10**9)))
        if known is None:
            return "AB"[int(hashlib.sha256(text.encode()).digest()[0]) % 2]
        source, a_is_better = known
        right = "A" if a_is_better else "B"
        u = int.from_bytes(hashlib.sha256(f"{model}\n{text}".encode()).digest()[:8], "big") / 2**64
        return right if u < self.accuracy[source] else "AB"[right == "A"]


def read_source(folder: Path) -> tuple[pa.Table, list[int]]:
    files = sorted(folder.glob("*.parquet"))
    tables = [pq.read_table(f) for f in files]
    return pa.concat_tables(tables), [t.num_rows for t in tables]


def flip(data: Path, flips: dict[str, float], seed: int) -> dict[str, set[int]]:
    """Swap each source's answers for a seeded share of its rows, in place; the rows flipped."""
    out = {}
    for k, name in enumerate(SOURCES):
        table, sizes = read_source(data / name)
        rng = np.random.default_rng([seed, k])
        chosen = set(rng.choice(table.num_rows, round(table.num_rows * flips[name]),
                                replace=False).tolist())
        mask = pa.array([i in chosen for i in range(table.num_rows)])
        for a, b in ANSWERS[name]:
            col_a, col_b = table.column(a), table.column(b)
            table = table.set_column(table.schema.get_field_index(a), a,
                                     pc.if_else(mask, col_b, col_a))
            table = table.set_column(table.schema.get_field_index(b), b,
                                     pc.if_else(mask, col_a, col_b))
        start = 0
        for f, n in zip(sorted((data / name).glob("*.parquet")), sizes, strict=True):
            pq.write_table(table.slice(start, n), f)
            start += n
        out[name] = chosen
    return out


def mapped(overrides: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Each source's rows as its own code maps them."""
    import datasets

    from pipeline.settings import load_config

    datasets.disable_progress_bars()
    from stages.sources import get_source

    cfg = load_config(overrides)
    out = {}
    for name in SOURCES:
        source = get_source(name)
        out[name] = source.map_batch(source.raw_table(cfg.sources[name], use_sample=False),
                                     cfg.sources[name]).to_pylist()
    return out


def truth_of(rows: dict[str, list[dict[str, Any]]]) -> dict[str, tuple[str, bool]]:
    """Before any flip: the chosen answer is the better one."""
    truth = {}
    for name, rs in rows.items():
        for r in rs:
            if r["chosen"] and r["rejected"]:
                truth[digest(r["chosen"][0]["content"])] = (name, True)
                truth[digest(r["rejected"][0]["content"])] = (name, False)
    return truth


def fates(out: Path, rows: dict[str, list[dict[str, Any]]]) -> dict[tuple[str, int], dict[str, Any]]:
    """(source, source_index) -> where the row ended: its part, reason, split and evidence."""
    by_pair: dict[tuple[str, str], list[int]] = {}
    for name, rs in rows.items():
        for r in rs:
            by_pair.setdefault((name, r["pair_id"]), []).append(r["source_index"])
    found: dict[tuple[str, int], dict[str, Any]] = {}
    for part in ("rejected", "quarantine", "deduplicated", "sft", "rl"):
        for f in sorted((out / part).glob("*.parquet")):
            for r in pq.read_table(f).to_pylist():
                if "source_index" in r:
                    key = (r["source"], r["source_index"])
                else:  # a kept row: the first row of its pair not found yet
                    ids = by_pair[(r["source"], r["pair_id"])]
                    key = (r["source"], next((i for i in ids if (r["source"], i) not in found),
                                             ids[0]))
                if part == "sft" and key in found:  # the same pair's swapped row
                    continue
                found[key] = {"part": part, "reason": r.get("reason") or "",
                              "split": r.get("split") or part,
                              "kind": (r.get("detail") or "").split(":", 1)[0]}
    return found


def score(found: dict[tuple[str, int], dict[str, Any]], flipped: dict[str, set[int]],
          rows: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    out = []
    for name in SOURCES:
        n = Counter()
        for r in rows[name]:
            f = found.get((name, r["source_index"]), {"part": "missing", "reason": "", "split": ""})
            bad = r["source_index"] in flipped[name]
            reached = f["part"] in ("sft", "rl") or (f["part"] == "rejected"
                                                     and f["reason"] not in EARLY)
            n["flips"] += bad
            n["flips_checked"] += bad and reached
            # the flips a teacher judged: distilled, past the reference check
            n["flips_judged"] += bad and f["split"] == "sft" and f["part"] != "rl" and (
                f["part"] == "sft" or f["kind"] != "reference") and reached
            if f["reason"] == "contested_label":
                n[f"contested_{f['kind']}"] += 1
                n[f"right_{f['kind']}"] += bad
            if f["part"] in ("sft", "rl"):
                n[f"kept_{f['part']}"] += 1
                n[f"flips_in_{f['part']}"] += bad
        found_all = n["right_reference"] + n["right_teachers"]
        contested = n["contested_reference"] + n["contested_teachers"]
        keys = ("flips", "flips_checked", "flips_judged", "contested_reference", "right_reference",
                "contested_teachers", "right_teachers", "kept_sft", "kept_rl", "flips_in_sft",
                "flips_in_rl")
        out.append({"source": name, **{k: n[k] for k in keys},
                    "precision": _rate(found_all, contested),
                    "recall": _rate(found_all, n["flips_checked"]),
                    **{f"precision_{k}": _rate(n[f"right_{k}"], n[f"contested_{k}"])
                       for k in ("reference", "teachers")},
                    "recall_teachers": _rate(n["right_teachers"], n["flips_judged"])})
    return out


def _rate(a: int, b: int) -> float | None:
    return round(a / b, 4) if b else None


def build(overrides: list[str], log: Path) -> float:
    start = time.monotonic()
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    with log.open("w") as f:
        done = subprocess.run([sys.executable, "-m", "pipeline.cli", "build", *overrides],
                              cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT)
    if done.returncode:
        sys.exit(f"the build failed: see {log}")
    return time.monotonic() - start


def audit_calls(out: Path) -> int:
    m = json.loads((out / "manifest.json").read_text())
    return sum(c["calls"] for c in m["teacher"]["by_call"] if c["call"] == "audit")


def table(results: dict[str, dict[str, Any]]) -> str:
    lines = ["| build | source | flips (checked) | contested: reference (flipped) | contested: "
             "teachers (flipped) | precision | recall | teachers' recall of the flips judged | "
             "flips left in sft / rl | sft / rl rows | audit calls |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    pct = lambda v: "-" if v is None else f"{v:.1%}"  # noqa: E731
    for variant, res in results.items():
        for r in res["sources"]:
            lines.append(
                f"| {variant} | {r['source']} | {r['flips']} ({r['flips_checked']}) | "
                f"{r['contested_reference']} ({r['right_reference']}) | "
                f"{r['contested_teachers']} ({r['right_teachers']}) | {pct(r['precision'])} | "
                f"{pct(r['recall'])} | {pct(r['recall_teachers'])} ({r['flips_judged']}) | "
                f"{r['flips_in_sft']} / {r['flips_in_rl']} | "
                f"{r['kept_sft']} / {r['kept_rl']} | {res['audit_calls']} |")
    return "\n".join(lines)


def pairs(text: str, kind: type) -> dict[str, Any]:
    out = {}
    for item in text.split(","):
        key, value = item.split("=")
        out[key] = kind(value)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--scale", type=float, default=0.1)
    ap.add_argument("--flips", default="skywork=0.15,code_preference_pairs=0,math_step_dpo=0.05",
                    help="share of each source's labels flipped")
    ap.add_argument("--accuracy", default="skywork=0.8,code_preference_pairs=0.7,math_step_dpo=0.75",
                    help="how often the judge names the truly better answer, per source")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    flips, accuracy = pairs(args.flips, float), pairs(args.accuracy, float)
    data = args.work / "data"
    write_all(data, args.scale, args.seed)
    base = data_overrides(data)
    truth = truth_of(mapped(base))
    flipped = flip(data, flips, args.seed)
    rows = mapped(base)
    server, url = slow_api.start(0.0, 0.0, 400, judge=TruthJudge(truth, accuracy))
    results: dict[str, dict[str, Any]] = {}
    try:
        for variant, extra in VARIANTS.items():
            out = args.work / variant.strip("+ ")
            over = ["recipe=rmr1", *base, f"output.dir={out}",
                    *(f"{k}{v}" for k in ("teacher", "teacher2") for v in (
                        "=openai", f".model=bench-{k}", f".base_url={url}",
                        f".cache_dir={args.work / 'cache'}")), *extra]
            if "+audit=openai" in extra:
                over.append(f"audit.base_url={url}")
            seconds = build(over, args.work / f"{out.name}.log")
            results[variant] = {"seconds": round(seconds, 1), "audit_calls": audit_calls(out),
                                "sources": score(fates(out, rows), flipped, rows)}
            print(f"{variant}: {seconds:.0f} s", flush=True)
    finally:
        server.terminate()
    report = {"machine": machine(), "command": " ".join(sys.argv), "flips": flips,
              "accuracy": accuracy, "scale": args.scale, "results": results}
    (args.work / "label-flips.json").write_text(json.dumps(report, indent=1))
    print(table(results))


if __name__ == "__main__":
    main()

"""Offline vLLM engines on the sample build: both passes on `vllm_engines`, cache empty.

Times the whole build and its teacher steps (pass 1, and pass 2 with what runs beside it),
counts the engine starts the log reports, and checks that a warm rerun writes the same shards.
Pair it with an earlier commit on the same machine (`--tree <clone>`), one after the other:

    .venv/bin/python bench/engines_bench.py --work /tmp/eng-new
    .venv/bin/python bench/engines_bench.py --tree /tmp/before --work /tmp/eng-old
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.scale_bench import ROOT, run_build, stage_table  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tree", type=Path, default=ROOT,
                    help="the checkout to build with (default: this one)")
    ap.add_argument("--work", type=Path, required=True, help="cache, output and logs go here")
    ap.add_argument("--max-tokens", type=int, default=160,
                    help="max_tokens of both passes (small keeps a CPU run short)")
    args = ap.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    common = ["teacher=vllm_engines", "teacher2=vllm_engines",
              f"teacher.cache_dir={args.work}/cache", f"teacher.max_tokens={args.max_tokens}",
              f"teacher2.max_tokens={args.max_tokens}"]
    result = {}
    for name in ("cold", "warm"):
        out = args.work / name
        build = run_build([*common, f"output.dir={out}"], args.work / f"{name}.log", args.tree)
        manifest, seconds = stage_table(out)
        log = (args.work / f"{name}.log").read_text()
        calls = {c["call"]: c for c in manifest["teacher"]["by_call"]}
        result[name] = {
            "wall_s": build["wall_s"], "peak_gib": build["peak_gib"],
            "engine_starts": sum(int(n) for n in re.findall(
                r"starting (\d+) offline vLLM engine", log)),
            "pass1_requests": calls.get("pass 1", {}).get("requests", 0),
            "pass2_requests": calls.get("pass 2", {}).get("requests", 0),
            "completion_tokens": sum(c["completion_tokens"] for c in calls.values()),
            "steps_s": {k: round(v, 1) for k, v in seconds.items()
                        if "teacher" in k or "bootstrap" in k},
            "files": manifest["files"]}
    same = result["cold"]["files"] == result["warm"]["files"]
    for r in result.values():
        del r["files"]
    print(json.dumps({"tree": str(args.tree), "max_tokens": args.max_tokens,
                      "warm_byte_identical": same, **result}, indent=1))


if __name__ == "__main__":
    main()

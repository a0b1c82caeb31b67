"""The whole `rmr1` build at full scale against a slow, heavy-tailed API, then again warm.

    .venv/bin/python bench/scale_bench.py               # the published sizes: ~73K pairs used
    .venv/bin/python bench/scale_bench.py --scale 13.7  # ~1M pairs used

1. Writes Hub-schema-exact synthetic files for Skywork (77K), Code-Preference-Pairs (55K) and
   Math-Step-DPO (10.8K) and the four reward benchmarks (bench/scale_data.py), times `--scale`.
2. Starts a loopback OpenAI-compatible API with log-normal latency (bench/slow_api.py) for
   both teachers (pass 1 and pass 2), and runs `rubricforge build recipe=rmr1` on the files with
   `data_files`, from empty caches (teacher answers, MinHash bands, token counts: a first
   build on a new machine).
3. Runs the same build again into another folder: every answer is cached, so this is the CPU
   path alone; its shards must be byte-identical to the first build's.

It reports per step the wall time (`logs/<name>-stages.json`; consecutive row stages run as one
pass and are one step) and rows (the manifest), the peak memory of the build's whole process
tree (the sum of PSS over the build, Ray's daemons and its workers, sampled every second: shared
pages such as Ray's object store count once), with, per step, Ray's object store (/dev/shm) and
the disk written since the start (Ray's spill, the output, caches; the samples are saved beside
the build's log as `<log>.memory.json`), and each
teacher's utilization measured at the server: mean requests in flight from its first arrival to
its last answer, divided by `teacher.concurrency`, beside its ceiling: what a client that never
leaves a slot empty gets with the same latencies (the drain of a heavy tail is the rest).
Markdown tables for bench/RESULTS.md are printed; everything is also written to
`<work>/results-<scale>.json`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import slow_api  # noqa: E402
from bench.measure import machine  # noqa: E402
from bench.scale_data import data_overrides, write_all  # noqa: E402

MODELS = {"teacher": "bench-judge", "teacher2": "bench-judge-2"}


class TreeMemory:
    """Peak of the summed PSS of a process and all its descendants, and of what Ray's object
    store holds in shared memory and has spilled to disk (disk used beyond the start: the
    spill files are what a build writes under /tmp). Every sample goes to `timeline`."""

    def __init__(self, pid: int, every_s: float = 1.0) -> None:
        self.pid, self.every_s, self.peak = pid, every_s, 0
        self.timeline: list[dict[str, float]] = []
        self._disk0 = shutil.disk_usage(tempfile.gettempdir()).used
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        start = time.monotonic()
        with contextlib.suppress(psutil.Error):
            root = psutil.Process(self.pid)
            while not self._stop.wait(self.every_s):
                total = 0
                for p in [root, *root.children(recursive=True)]:
                    with contextlib.suppress(psutil.Error):
                        total += p.memory_full_info().pss
                self.peak = max(self.peak, total)
                self.timeline.append({
                    "t": round(time.monotonic() - start, 1), "pss_gib": _gib(total),
                    "shm_gib": _gib(shutil.disk_usage("/dev/shm").used),
                    "spill_gib": _gib(shutil.disk_usage(tempfile.gettempdir()).used - self._disk0)})

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(timeout=30)
        return self.peak


def _gib(n: float) -> float:
    return round(n / 2**30, 2)


def per_stage(timeline: list[dict[str, float]], wall_s: float, stages: dict[str, float]
              ) -> dict[str, dict[str, float]]:
    """The peaks of each stage's span. Stage times are laps from when the build starts
    working; what is before them (starting Python and Ray) is the wall time they leave out."""
    start = wall_s - sum(stages.values())
    peaks = {}
    for name, secs in stages.items():
        inside = [s for s in timeline if start <= s["t"] < start + secs] or [{}]
        peaks[name] = {k: max(s.get(k, 0.0) for s in inside)
                       for k in ("pss_gib", "shm_gib", "spill_gib")}
        start += secs
    return peaks


def run_build(overrides: list[str], log: Path, tree: Path = ROOT) -> dict[str, Any]:
    # PYTHONPATH: the build and its Ray workers import `tree` (a copy of this one, or a clone
    # of an earlier commit for a paired figure), whatever the environment has installed
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", PYTHONPATH=str(tree))
    start = time.monotonic()
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "pipeline.cli", "build", *overrides],
                                cwd=tree, env=env, stdout=out, stderr=subprocess.STDOUT)
        memory = TreeMemory(proc.pid)
        code = proc.wait()
    wall = time.monotonic() - start
    peak = memory.stop()
    log.with_suffix(".memory.json").write_text(json.dumps(memory.timeline))
    if code != 0:
        sys.exit(f"build failed ({code}); see {log}")
    return {"wall_s": round(wall, 1), "peak_gib": round(peak / 2**30, 2),
            "peak_spill_gib": max((s["spill_gib"] for s in memory.timeline), default=0.0),
            "timeline": memory.timeline}


def stage_table(outdir: Path) -> tuple[dict[str, Any], dict[str, float]]:
    manifest = json.loads((outdir / "manifest.json").read_text())
    seconds = json.loads((outdir.parent / "logs" / f"{outdir.name}-stages.json").read_text())
    return manifest, seconds["seconds"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0, help="multiple of the published sizes")
    ap.add_argument("--work", type=Path, default=Path("/tmp/rubricforge-scale"))
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--median", type=float, default=2.0, help="median API latency, seconds")
    ap.add_argument("--sigma", type=float, default=1.0)
    ap.add_argument("--distill-fraction", type=float, default=0.12)
    ap.add_argument("--actors", type=int, default=1, help="teacher client actors per stage")
    ap.add_argument("--tree", type=Path, default=ROOT,
                    help="the checkout to build with (a clone of another commit, to pair)")
    ap.add_argument("--no-warm", action="store_true", help="skip the warm rerun")
    ap.add_argument("--pass1-anthropic-batch", type=float, metavar="SECONDS",
                    help="pass 1 through Anthropic's Message Batches (teacher=anthropic_batch) "
                         "on the loopback server, each batch ending after SECONDS")
    ap.add_argument("--keep-cache", action="store_true",
                    help="start from the cache an earlier run left (not a cold build)")
    args = ap.parse_args()

    data = args.work / f"data-{args.scale:g}"
    if not (data / "done").exists():
        t = time.monotonic()
        print("writing data:", write_all(data, args.scale), f"{time.monotonic() - t:.0f}s")
        (data / "done").touch()
    tag = f"{args.scale:g}"
    cache, cold_out, warm_out = (args.work / f"cache-{tag}", args.work / f"out-{tag}",
                                 args.work / f"warm-{tag}")
    if not args.keep_cache:
        shutil.rmtree(cache, ignore_errors=True)
    server, url = slow_api.start(args.median, args.sigma,
                                 batch_s=args.pass1_anthropic_batch or 30.0)
    try:
        common = ["recipe=rmr1", *data_overrides(data),
                  f"sources.code_preference_pairs.limit={round(8000 * args.scale)}",
                  f"recipe.stages.split.distill_fraction={args.distill_fraction}",
                  # every cache of the build in one folder, emptied for a cold build: the
                  # MinHash bands and token counts too, or a cold build would be as fast
                  # as this machine's history made it
                  f"++recipe.stages.near_dedup.cache_dir={cache}/minhash",
                  f"++recipe.stages.token_lengths.cache_dir={cache}/token_counts"]
        if args.actors > 1:
            common += [f"++recipe.stages.{s}.resources.actors={args.actors}"
                       for s in ("teacher", "bootstrap")]
        for key in ("teacher", "teacher2"):
            common += [f"{key}=openai", f"{key}.model={MODELS[key]}", f"{key}.base_url={url}",
                       f"{key}.concurrency={args.concurrency}", f"{key}.max_tokens=1024",
                       f"{key}.cache_dir={cache}", f"{key}.timeout_s=120"]
        if args.pass1_anthropic_batch:  # pass 1 on Anthropic's batches at the same server
            common = [o for o in common if o != "teacher=openai"] + [
                "teacher=anthropic_batch", f"teacher.base_url={url.removesuffix('/v1')}",
                "teacher.batch_poll_s=5"]
        cold = run_build([*common, f"output.dir={cold_out}"], args.work / f"cold-{tag}.log",
                         args.tree)
        with urllib.request.urlopen(f"{url}/stats") as r:
            records = json.load(r)
        warm = ({"wall_s": 0.0, "peak_gib": 0.0} if args.no_warm else
                run_build([*common, f"output.dir={warm_out}"], args.work / f"warm-{tag}.log",
                           args.tree))
    finally:
        server.terminate()
    manifest, cold_s = stage_table(cold_out)
    warm_manifest, warm_s = (manifest, {}) if args.no_warm else stage_table(warm_out)
    same = None if args.no_warm else manifest["files"] == warm_manifest["files"]
    util = {k: slow_api.utilization(records, m, args.concurrency) for k, m in MODELS.items()}
    span = slow_api.teacher_span(records, MODELS["teacher"], args.concurrency)
    used = sum(manifest["inputs"].values()) - sum(
        r["rows"] for r in manifest["reasons"] if r["reason"] in ("over_limit", "excluded_subset"))
    result = {"machine": machine(), "args": {k: str(v) for k, v in vars(args).items()},
              "inputs": manifest["inputs"], "pairs_used": used, "totals": manifest["totals"],
              "balanced": manifest["balanced"], "cold": cold | {"stages": cold_s},
              "warm": warm | {"stages": warm_s}, "byte_identical": same, "utilization": util,
              "teacher_span": span}
    (args.work / f"results-{tag}.json").write_text(json.dumps(result, indent=2))

    print(f"\nmachine: {machine()}; scale {tag}: {sum(manifest['inputs'].values()):,} rows read, "
          f"{used:,} pairs used; accounting {'balanced' if manifest['balanced'] else 'MISMATCH'}; "
          f"warm rerun byte-identical: {'not run' if same is None else same}")
    print(f"totals: {manifest['totals']}\n")
    print("| stage | rows in | rows out | cold (s) | warm (s) | cold peak PSS / shm / spill (GiB) |"
          "\n|---|---|---|---|---|---|")
    rows = {s["stage"]: s for s in manifest["stages"]}
    peaks = per_stage(cold["timeline"], cold["wall_s"], cold_s)
    for name in [*cold_s]:
        steps, p = name.split(" + "), peaks[name]
        first, last = rows.get(steps[0], {}), rows.get(steps[-1], {})
        print(f"| {name} | {first.get('rows_in', '')} | {last.get('rows_out', '')} "
              f"| {cold_s[name]:.1f} "
              f"| {warm_s.get(name, 0.0):.1f} | {p['pss_gib']} / {p['shm_gib']} / "
              f"{p['spill_gib']} |")
    print(f"| **whole build** | | | {cold['wall_s']:.0f} | {warm['wall_s']:.0f} |")
    print(f"\npeak memory (PSS of the build's process tree): cold {cold['peak_gib']} GiB, "
          f"warm {warm['peak_gib']} GiB; peak spill: cold {cold['peak_spill_gib']} GiB, "
          f"warm {warm.get('peak_spill_gib', 0.0)} GiB\n")
    print("| teacher | requests | span (s) | mean in flight | utilization | ceiling (no empty slot) |"
          "\n|---|---|---|---|---|---|")
    for key, u in util.items():
        print(f"| {key} ({MODELS[key]}) | {u['requests']:,} | {u['span_s']} | "
              f"{u['mean_in_flight']} | {u['utilization']} | {u['ceiling']} |")
    print(f"\nteacher span {span['span_s']} s (first request of any teacher to the last answer); "
          f"pass 1's ideal {span['pass1_ideal_s']} s (its latencies / concurrency): "
          f"{span['ratio']}x")


if __name__ == "__main__":
    main()

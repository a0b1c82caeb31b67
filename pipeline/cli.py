"""`rubricforge` command line: `rubricforge build [key=value ...]`."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from typing import Any

from pipeline.engine.config import CONF_DIR, ConfigError, RunError
from pipeline.engine.signals import terminated, unwind_on_sigterm
from pipeline.settings import load_config

BUILD_EPILOG = """\
configuration (Hydra): any key can be set as key=value; a group is chosen as group=option.
{groups}
examples:
  rubricforge build                                   # sample data, local teacher, offline
  rubricforge build recipe=rmr1 teacher=openai teacher.model=o3
  rubricforge build teacher=openai teacher.model=my-model teacher.base_url=http://host:8000/v1
  rubricforge build recipe.stages.split.distill_fraction=0.5 seed=7 output.dir=build/try
  rubricforge build --show-config recipe=rmr1         # print the resolved config and stop
  rubricforge build --estimate recipe=rmr1 teacher=openai teacher.model=o3 \
      teacher.price_input_per_mtok=2 teacher.price_output_per_mtok=8   # calls and cost first

The full config is in {conf}. Output: output.dir (default build/<recipe>), with sft/, rl/,
rejected/, quarantine/ and manifest.json.
"""


EVAL_EPILOG = """\
examples:
  rubricforge eval --limit 20 teacher=openai teacher.model=o3 --estimate   # calls and cost first
  rubricforge eval --limit 20 teacher=openai teacher.model=o3
  rubricforge eval teacher=vllm_engines teacher.model=my-judge teacher.checkpoint=path/to/checkpoint \\
      teacher.num_gpus=1 eval.benchmarks=[rm_bench]
  rubricforge eval eval.use_samples=true                                   # offline, the samples

Settings under eval.*: benchmarks, limit, both_orders, use_samples, output_dir.
"""


def _groups() -> str:
    """Each config group's options; a backend's earlier name (still accepted) is not offered."""
    from pipeline.teachers.backends import renamed

    lines = []
    for group in sorted(p for p in CONF_DIR.iterdir() if p.is_dir()):
        options = sorted(f.stem for f in group.glob("*.yaml") if f.stem not in renamed())
        lines.append(f"  {group.name + ':':10s} {', '.join(options)}")
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rubricforge",
        description="Build judging-trace (SFT) and verdict-labelled (RL) datasets for "
                    "reasoning reward models.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    build = sub.add_parser(
        "build", help="collect, check, split, render, ask the teacher, filter and write shards",
        description="Run the whole pipeline on the configured recipe.",
        epilog=BUILD_EPILOG.format(groups=_groups(), conf=CONF_DIR),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    build.add_argument("overrides", nargs="*", metavar="key=value",
                       help="config overrides, e.g. recipe=rmr1 teacher.max_tokens=2048")
    build.add_argument("--show-config", action="store_true",
                       help="print the resolved configuration and exit without building")
    build.add_argument("--estimate", action="store_true",
                       help="run the stages before the teacher, then print the calls, tokens and "
                            "cost the teachers would take; ask nothing, write nothing")
    build.add_argument("--accuracy-from", metavar="EVAL_JSON",
                       help="with --estimate: project pass 2 with the teacher's verdict accuracy "
                            "measured by `rubricforge eval` (its eval.json), not RM-R1's 75%%")
    ev = sub.add_parser(
        "eval", help="score the teacher (an API model or your checkpoint) on the reward benchmarks",
        description="Judge RewardBench, RM-Bench, RMB and RewardBench 2 with the teacher, the "
                    "build's judge prompt and its verdict rule, in both A/B orders, through the "
                    "same cache, cost cap and limits as a build; print each benchmark's score "
                    "by its own rule and write eval.json, eval.md (with a plot) and "
                    "judgements.parquet under eval.output_dir.",
        epilog=EVAL_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    ev.add_argument("overrides", nargs="*", metavar="key=value",
                    help="config overrides, e.g. teacher=openai teacher.model=o3")
    ev.add_argument("--limit", type=int, metavar="N",
                    help="only the first N items of each subset (eval.limit)")
    ev.add_argument("--estimate", action="store_true",
                    help="print the requests, tokens and cost it would take; ask nothing")
    ev.add_argument("--show-config", action="store_true", help="print the resolved config and exit")
    sub.add_parser("sources", help="list the sources you can build from",
                   description="List every source (stages/sources/<name>.py) with its Hub id, "
                               "license, published rows and sample rows.")
    cache = sub.add_parser(
        "cache", help="inspect, export or prune the teacher response cache",
        description="The teacher cache holds one file per answered request (content-addressed), "
                    "so nothing is paid twice. `stats` says what it holds, `export` writes it as "
                    "JSON lines, `prune` deletes answers no build has used for a while.")
    cache.add_argument("action", choices=["stats", "export", "prune"])
    cache.add_argument("--dir", help="cache directory or fsspec URL (default: teacher.cache_dir "
                                     "of the config, ~/.cache/rubricforge/teacher)")
    cache.add_argument("--out", help="export: the JSONL file to write")
    cache.add_argument("--older-than-days", type=float,
                       help="prune: delete answers not read or written for this many days")
    cache.add_argument("--dry-run", action="store_true", help="prune: only say what would go")
    pub = sub.add_parser(
        "publish", help="upload a build directory to the Hugging Face Hub",
        description="Upload a build (its card, shards, manifest, plots) to a Hub dataset repo in "
                    "one commit. Unchanged files are skipped and an unchanged build makes no "
                    "commit; shards the build no longer has are deleted. The token is read from "
                    "HF_TOKEN or the Hugging Face login and never printed.")
    pub.add_argument("directory", help="a build output directory, e.g. build/sample")
    pub.add_argument("--repo", required=True, help="Hub dataset id, org/name")
    pub.add_argument("--private", action="store_true", help="create the repo as private")
    pub.add_argument("--revision", help="branch to commit to (created if missing)")
    pub.add_argument("--dry-run", action="store_true",
                     help="print the operations without contacting the Hub")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    # overrides may come before and after options (`eval a=1 --limit 5 b=2`)
    args, rest = parser.parse_known_args(argv)
    if rest and hasattr(args, "overrides") and all("=" in r and not r.startswith("-")
                                                   for r in rest):
        args.overrides += rest
    elif rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.command is None:
        _parser().print_help()
        return 2
    # SIGTERM unwinds like Ctrl-C, so the local teacher server and Ray are stopped on the way out.
    unwind_on_sigterm()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    args.on_interrupt = ""
    commands = {"build": _build, "eval": _eval, "sources": _sources, "publish": _publish,
                "cache": _cache}
    return _run(commands[args.command], args)


def _run(command: Any, args: argparse.Namespace) -> int:
    """The one place errors become what a person reads and an exit status: a setting (2),
    something outside the settings (1), Ctrl-C (130), SIGTERM (143): one line each, no
    traceback."""
    try:
        return command(args)
    except ConfigError as exc:
        _say(str(exc))
        return 2
    except RunError as exc:
        _say(str(exc))
        return 1
    except KeyboardInterrupt:
        if terminated():
            _say(f"terminated (SIGTERM){args.on_interrupt or '.'}")
            return 143
        _say(f"interrupted{args.on_interrupt or '.'}")
        return 130


def _say(line: str) -> None:
    print(f"rubricforge: {line}", file=sys.stderr)


def _resume_hint(cfg: Any) -> str:
    return (f" Every answer received is in the teacher cache ({cfg.teacher.cache_dir}): run the "
            "same command again to resume without paying for it twice.")


def _cache(args: argparse.Namespace) -> int:
    import datetime
    from pathlib import Path

    from pipeline.engine import storage
    from pipeline.teachers import cache

    root = storage.resolve(args.dir or load_config([]).teacher.cache_dir)
    fs, path = storage.fs_of(root)
    if not fs.isdir(path):
        raise RunError(f"no cache at {root} (--dir names another)")
    if args.action == "stats":
        st = cache.stats(root)
        day = lambda t: datetime.datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M") if t else "-"  # noqa: E731
        print(f"{st['dir']}: {st['responses']:,} answers, {st['bytes'] / 2**20:.1f} MiB, "
              f"{st['prompt_tokens']:,} prompt + {st['completion_tokens']:,} completion tokens "
              f"paid for; oldest {day(st['oldest'])}, newest {day(st['newest'])}; "
              f"{st['unreadable']} unreadable, {st['leftover_temp_files']} temp files left by crashes")
        return 0
    if args.action == "export":
        if not args.out:
            _say("cache export needs --out FILE.jsonl")
            return 2
        n = cache.export(root, Path(args.out))
        print(f"wrote {n:,} answers to {args.out}")
        return 0
    if args.older_than_days is None:
        _say("cache prune needs --older-than-days N")
        return 2
    n, freed = cache.prune(root, args.older_than_days * 86400, args.dry_run)
    verb = "would delete" if args.dry_run else "deleted"
    print(f"{verb} {n:,} files ({freed / 2**20:.1f} MiB) not used for {args.older_than_days:g} days")
    return 0


def _eval(args: argparse.Namespace) -> int:
    from omegaconf import OmegaConf

    from pipeline.evaluation import check, estimate_text, run_eval, summary
    from pipeline.plan import check_teachers

    overrides = [*args.overrides, *([f"eval.limit={args.limit}"] if args.limit is not None
                                   else [])]
    cfg = load_config(overrides)
    if args.show_config:
        print(OmegaConf.to_yaml(cfg), end="")
        return 0
    check(cfg)
    check_teachers(cfg, ["teacher"], sending=not args.estimate)
    if args.estimate:
        print(estimate_text(cfg))
        return 0
    args.on_interrupt = "." + _resume_hint(cfg)
    report = run_eval(cfg)
    print(summary(report, cfg.eval.output_dir))
    return 0


def _sources(args: argparse.Namespace) -> int:
    from pipeline.sources_table import sources_table

    print(sources_table())
    return 0


def _publish(args: argparse.Namespace) -> int:
    from pathlib import Path

    from pipeline.output.publish import publish

    publish(Path(args.directory), args.repo, private=args.private, revision=args.revision,
            dry_run=args.dry_run)
    return 0


def _build(args: argparse.Namespace) -> int:
    from omegaconf import OmegaConf

    from pipeline.plan import make_plan

    cfg = load_config(args.overrides)
    if args.show_config:
        print(OmegaConf.to_yaml(cfg), end="")
        return 0
    plan = make_plan(cfg, sending=not args.estimate)
    from pipeline.build import run_build

    if args.estimate:
        from pipeline.estimate import accuracy_from, estimate, report

        measured = accuracy_from(args.accuracy_from, cfg.teacher) if args.accuracy_from else None
        lines, rows = (estimate(cfg, plan, measured[0]) if measured else estimate(cfg, plan))
        print(report(cfg, lines, rows, measured))
        return 0
    start = time.monotonic()
    # the local servers and Ray are stopped and the staging removed on the way out
    args.on_interrupt = f"; {cfg.output.dir} is as it was." + _resume_hint(cfg)
    manifest, out, seconds = run_build(cfg, plan, args.overrides)
    args.on_interrupt = ""
    print(summary(manifest, str(out), time.monotonic() - start, seconds))
    if cfg.publish.repo:
        from pathlib import Path

        from pipeline.output.publish import PublishError, publish

        try:
            publish(Path(out), cfg.publish.repo, private=cfg.publish.private,
                    revision=cfg.publish.revision)
        except PublishError as exc:
            raise PublishError(f"the build is in {out}, but publishing failed: {exc}") from None
    return 0


def summary(m: dict[str, Any], out: str, seconds: float, stage_seconds: dict[str, float]) -> str:
    lines = [f"\nrubricforge build: recipe {m['recipe']} in {seconds:.0f}s -> {out}", "",
             "rows and seconds per stage:"]
    times = {}
    for step, secs in stage_seconds.items():
        *joined, last = step.split(" + ")
        times |= dict.fromkeys(joined, f"{'|':>8}") | {last: f"{secs:>7.1f}s"}
    for s in m["stages"]:
        removed = ", ".join(f"{k} {v}" for k, v in s["removed"].items()) or "-"
        added = f"added: {s['added']}, " if s.get("added") else ""
        lines.append(f"  {s['stage']:32s} in {s['rows_in']:>7}  out {s['rows_out']:>7}  "
                     f"{times.get(s['stage'], f'{0.0:>7.1f}s')}  {added}removed: {removed}")
    lines.append(f"  {'write (shards, manifest, card)':32s} {'':>21}  "
                 f"{stage_seconds.get('write', 0.0):>7.1f}s")
    if any(" + " in step for step in stage_seconds):
        lines.append("  (|: ran in one pass with the next stage, whose time includes it; row stages "
                     "share a pass)")
    t = m["totals"]
    both = m["sft_rows"] - t["kept_sft"]
    sft = f"{m['sft_rows']} rows ({both} pairs in both orders)" if both else str(t["kept_sft"])
    lines += ["", f"kept: sft {sft}, rl {t['kept_rl']}   rejected {t['rejected']}   "
                  f"quarantined {t['quarantined']}   deduplicated {t['deduplicated']}"]
    lines.append(f"accounting: {'every input row accounted for' if m['balanced'] else 'MISMATCH'}"
                 f" ({sum(m['inputs'].values())} rows in"
                 + (f", {sum(m['added'].values())} added" if m.get("added") else "") + ")")
    for c in m["teacher"]["by_call"]:
        held = f", {c['not_sent']} not sent (cost cap)" if c["not_sent"] else ""
        lines.append(f"teacher {c['call']} {c['model']}: {c['calls']} calls, {c['requests']} "
                     f"requests, {c['cached']} from cache{held}, {c['errors']} errors, "
                     f"{c['prompt_tokens']} prompt + {c['completion_tokens']} completion tokens")
    from pipeline.output.manifest import contested_sources, far_cues

    what = {"longer": "the chosen answer is the longer", "more_markdown": "the chosen answer has "
            "more markdown", "more_code_blocks": "the chosen answer has more code blocks",
            "verdict_a": "the verdict is A"}
    for c in far_cues(m["quality"].get("cues", [])):
        low, high = c["interval"]
        lines.append(f"cue: {c['part']}/{c['source']}: {what[c['cue']]} in {c['share']:.0%} of "
                     f"{c['differ']} pairs (95%: {low:.0%}-{high:.0%}): a judge can learn it "
                     "instead of quality (card: Cues)")
    for x in contested_sources(m["quality"].get("labels", [])):
        low, high = x["interval"]
        by = {"reference": "its reference answers",
              "teachers": "the teachers' unhinted judgements"}.get(x["evidence"], x["evidence"])
        lines.append(f"labels: {x['source']}: {x['contested']} of {x['checked']} checked "
                     f"({x['share']:.0%}, 95%: {low:.0%}-{high:.0%}) contested by {by} "
                     "(card: Labels)")
    lines.append(f"manifest: {out}/manifest.json   card: {out}/README.md")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())

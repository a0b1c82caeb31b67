"""Mutation check: plant small, realistic bugs one at a time and see whether the tests that
cover each module fail. A mutant the tests let through is a promise nothing guards.

    make mutate                      # every mutant (about 15 minutes on 2 cores)
    .venv/bin/python bench/mutation_check.py --module verdict --module split

It works on a copy of the tree in a temporary folder (files git tracks or would track), so the
checkout is never left mutated, and runs each mutant's tests with the copy first on the path
(Ray's workers' too).
The score per module and every surviving mutant go to the terminal; bench/RESULTS.md keeps them.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# e2e and cluster builds take minutes each: the unit and small-Ray tests are what a mutant meets
MARKERS = "not e2e and not cluster"
TIMEOUT_S = 600


@dataclass(frozen=True)
class Mutant:
    module: str  # the group it is scored under
    path: str
    old: str  # must occur exactly once in the file
    new: str
    why: str


TESTS = {
    "verdict": ["tests/rules/test_verdict.py", "tests/rules/test_verdict_calibration.py"],
    "keys": ["tests/rules/test_keys.py", "tests/stages/test_split_place_render.py",
             "tests/stages/test_dedup.py"],
    "ngrams": ["tests/stages/test_decontaminate.py"],
    "hint_leak": ["tests/rules/test_hint_leak.py", "tests/stages/test_bootstrap.py"],
    "labels": ["tests/rules/test_labels.py", "tests/stages/test_label_check.py",
               "tests/stages/test_label_audit.py"],
    "eval": ["tests/test_eval_scores.py", "tests/test_eval.py",
             "tests/rules/test_many_answer_verdicts.py"],
    "prices": ["tests/teachers/test_spend.py", "tests/test_estimate.py",
               "tests/teachers/test_anthropic.py"],
    "cache": ["tests/teachers/test_teacher_client.py", "tests/test_cache_cli.py"],
    "spend": ["tests/teachers/test_spend.py", "tests/teachers/test_teacher_client.py"],
    "retries": ["tests/teachers/test_teacher_client.py", "tests/teachers/test_anthropic.py"],
    "dtype": ["tests/teachers/test_cpu_dtype.py", "tests/teachers/test_offline_engine.py"],
    "reading": ["tests/engine/test_reading.py", "tests/sources/test_sources.py",
                "tests/stages/test_validate.py"],
    "dedup": ["tests/stages/test_near_dedup.py", "tests/stages/test_dedup.py"],
    "split": ["tests/stages/test_split_place_render.py"],
    "token_lengths": ["tests/stages/test_token_lengths.py"],
    "manifest": ["tests/output/test_manifest.py", "tests/output/test_formats.py",
                 "tests/output/test_quality.py", "tests/stages/test_swap_consistency.py",
                 "tests/output/test_card_publish.py"],
}

V, K, N = "pipeline/rules/verdict.py", "pipeline/rules/keys.py", "pipeline/rules/ngrams.py"
T, Q = "pipeline/rules/trace_checks.py", "pipeline/rules/quotes.py"
C, CL, S = "pipeline/teachers/cache.py", "pipeline/teachers/client.py", "pipeline/teachers/spend.py"
R, M = "pipeline/engine/reading.py", "pipeline/output/manifest.py"
ND, ED, SP = "stages/near_dedup.py", "stages/exact_dedup.py", "stages/split.py"

MUTANTS = [
    # the verdict rule and the trace checks
    Mutant("verdict", V, "TAIL_CHARS = 80", "TAIL_CHARS = 200", "a wider tail than RL reads"),
    Mutant("verdict", V, "return found[0] if len(found) == 1 else None",
           "return found[0] if found else None", "both verdicts: the first wins"),
    Mutant("verdict", V, '"A": "A", "B": "B"}', '"A": "A", "B": "A"}', "winner 'B' scored as A"),
    Mutant("verdict", T, "if words >= REPEAT_MIN_WORDS and share < REPEAT_DISTINCT",
           "if words >= REPEAT_MIN_WORDS and share < 0.2", "loops let through"),
    Mutant("verdict", T, 'own_text = evidence.answers[side == "B"]',
           'own_text = evidence.answers[side == "A"]', "quotes checked against the other answer"),
    Mutant("verdict", Q, "if f\" {' '.join(piece)} \" in joined:",
           "if f\" {' '.join(piece[:3])} \" in joined:", "only a piece's first words checked"),
    Mutant("verdict", Q, "if mine is not None and any(c.isdigit() for c in mine):",
           "if False:", "a changed number let through"),
    Mutant("verdict", Q, "            if word in NEGATIONS:", "            if word in ():",
           "an added negation let through"),
    Mutant("verdict", Q, r'_EDITORIAL = re.compile(r"\[[^\]\n]{0,80}\](?!\()|',
           r'_EDITORIAL = re.compile(r"', "an editorial [note] counted against the quote"),
    Mutant("verdict", T, "    if own.share < min_fidelity:", "    if own.share < min_fidelity / 2:",
           "a quote half invented let through"),
    Mutant("verdict", T, "if share >= ELSEWHERE_SHARE and share > own.share:",
           "if share > 1:", "a quote of the other answer or the question let through"),
    Mutant("verdict", T, "COPY_WORDS = 8", "COPY_WORDS = 30", "copied instructions let through"),
    Mutant("verdict", T, "    if not ending:\n", "    if not ending and False:\n",
           "text after the verdict allowed"),
    Mutant("verdict", T, 'if finish_reason == "length":', 'if finish_reason == "stop":',
           "truncated traces kept"),
    Mutant("verdict", T, 'for side in ("A", "B"):\n        if not any(',
           'for side in ("A",):\n        if not any(', "Chatbot B need not be cited"),
    Mutant("verdict", T, r'_CLOSERS = r"(?:\s*</(?:answer|eval)>)*\s*\Z"',
           r'_CLOSERS = r"(?:\s*</?[a-z]+>)*\s*\Z"', "any tag after the verdict allowed"),
    Mutant("verdict", T, r'_CLOSERS = r"(?:\s*</(?:answer|eval)>)*\s*\Z"',
           r'_CLOSERS = r"(?:\s*</answer>)*\s*\Z"', "a stray </eval> rejected"),
    # labels checked against a reference answer
    Mutant("labels", "pipeline/rules/labels.py", "    if not good_ok:\n", "    if False:\n",
           "a chosen answer that misses the reference let through"),
    Mutant("labels", "pipeline/rules/labels.py", "    if bad_ok:\n", "    if False:\n",
           "a rejected answer that reaches the reference let through"),
    Mutant("labels", "stages/label_check.py", 'if status == CONTESTED and policy == "drop":',
           'if status == CONTESTED and policy == "mark":', "the parts' policies swapped"),
    Mutant("labels", "stages/label_audit.py", "        if agrees or not check.verdict:\n",
           "        if agrees:\n", "a second judgement with no verdict taken as contesting"),
    Mutant("labels", "stages/label_audit.py", 'shown = SWAPPED[row["winner"]] if self.swapped',
           'shown = row["winner"] if self.swapped', "the swapped judgement read in the first order"),
    Mutant("labels", "stages/label_audit.py", '    return row["label_status"] in (None, UNVERIFIED)',
           "    return True", "a label the reference settled asked again"),
    # eval: RewardBench 2's protocols
    Mutant("eval", "stages/benchmarks/pairwise.py",
           'return self.NO_VERDICT if o["four"] is None else o["four"]',
           'return 0.0 if o["four"] is None else o["four"]', "a best-of-four without verdict 0"),
    Mutant("eval", "stages/benchmarks/pairwise.py", "    return (0 in winners) / len(winners)",
           "    return float(0 in winners)", "a tie at the top rating given full credit"),
    Mutant("eval", "stages/benchmarks/pairwise.py",
           "    margin = min(right) - max(wrong)",
           "    margin = max(right) - max(wrong)", "Ties' margin from the best correct answer"),
    Mutant("eval", "stages/benchmarks/pairwise.py",
           "        return 0.0 if margin == 0 else math.copysign(1.0, margin)",
           "        return 0.0", "Ties' margin term without the zero-spread case"),
    Mutant("eval", "pipeline/rules/rating.py", r'r"<answer>\s*(10|[1-9])\s*</answer>"',
           r'r"<answer>\s*([1-9])\s*</answer>"', "a rating of 10 not read"),
    Mutant("eval", "pipeline/rules/best_of_four.py", "    return one_tag(text, TAGS)",
           '    return one_tag(text, {"A": TAGS["A"], "B": TAGS["B"]})', "C and D never read"),
    # prices: the cache and the batch discount
    Mutant("prices", "pipeline/teachers/prices.py",
           "fresh = max(0, prompt_tokens - cache_read - cache_write)", "fresh = prompt_tokens",
           "cached prompt tokens billed at the input price too"),
    Mutant("prices", "pipeline/teachers/prices.py",
           r'base = re.sub(r"-(\d{8}|\d{4}-\d{2}-\d{2}|latest)$", "", model)', "base = model",
           "a dated snapshot not found in the table"),
    # keys shared by dedup and split
    Mutant("keys", K, 'return " ".join(text.casefold().split())', 'return " ".join(text.split())',
           "case counts in normalized text"),
    Mutant("keys", K, 'f"{seed}:{salt}:{pair_id}:{index}"', 'f"{salt}:{pair_id}:{index}"',
           "the seed ignored"),
    Mutant("keys", K, 'else len(priority)', 'else 0', "unlisted sources win duplicates"),
    Mutant("keys", K, '    if key == "pair":\n        parts +=', '    if key == "pairs":\n        parts +=',
           "pair dedup compares prompts only"),
    # benchmark n-grams
    Mutant("ngrams", N, "inside = np.arange(len(grams)) + n <= ends",
           "inside = np.arange(len(grams)) + n < ends", "each prompt's last n-gram skipped"),
    Mutant("ngrams", N, "short = np.flatnonzero((lens > 0) & (lens < n))",
           "short = np.flatnonzero((lens > 0) & (lens < n - 1))", "short prompts of n-1 words missed"),
    # pass 2's hint leak
    Mutant("hint_leak", "pipeline/rules/hint_leak.py", 'r"\\bhint(s|ed)?\\b"', 'r"\\bhintxx\\b"',
           "'hint' not noticed"),
    Mutant("hint_leak", "pipeline/rules/hint_leak.py", "COPY_WORDS = 8", "COPY_WORDS = 40",
           "copied hint let through"),
    # the teacher cache and its key
    Mutant("cache", C, "blob = json.dumps(request,",
           'blob = json.dumps({k: v for k, v in request.items() if k != "temperature"},',
           "temperature missing from the key"),
    Mutant("cache", "pipeline/teachers/requests.py", 'for name in ("temperature", "top_p", "seed"):',
           'for name in ("temperature", "top_p"):', "seed neither sent nor keyed"),
    Mutant("cache", "pipeline/teachers/requests.py",
           '"max_completion_tokens": teacher_cfg.max_tokens, "sample": 0}',
           '"max_completion_tokens": 512, "sample": 0}', "max_tokens neither sent nor keyed"),
    Mutant("cache", C, "return None  # unreadable entry: ask again and overwrite it",
           "raise", "a corrupt entry stops the build"),
    Mutant("cache", C, "if storage.modified(info) < now - older_than_s}",
           "if storage.modified(info) < now + older_than_s}", "prune deletes fresh answers"),
    # spend and the cap
    Mutant("spend", S, "if self.cap is not None and self.spent + worst_usd > self.cap:",
           "if self.cap is not None and self.spent > self.cap:", "a request may pass the cap"),
    Mutant("spend", S, "        if self.stopped:\n            return \"stop\"",
           "        if False:\n            return \"stop\"", "Ctrl-C does not stop sending"),
    Mutant("spend", S, "self.in_flight = max(0.0, self.in_flight - worst_usd)",
           "self.in_flight = max(0.0, self.in_flight)", "settled requests stay in flight"),
    Mutant("spend", "pipeline/teachers/prices.py",
           "return kind_of(t).price_factor * listed_usd",
           "return 1.0 * listed_usd", "the Batch API's discount ignored"),
    Mutant("spend", "pipeline/teachers/answering.py", "        meter.stop.remote()\n", "",
           "Ctrl-C's drain without stopping the meter"),
    # retries
    Mutant("retries", "pipeline/teachers/client.py", "backoff = min(60.0, 0.5 * 2 ** (attempt - 1))",
           "backoff = min(60.0, 0.5)", "retries back off without growing"),
    Mutant("retries", "pipeline/teachers/client.py",
           "return max(0.0, float(header)) if header is not None else backoff",
           "return backoff", "the server's Retry-After ignored"),
    # the number format a CPU engine runs in
    Mutant("dtype", "pipeline/teachers/cpu_dtype.py", '"avx512_bf16" not in flags',
           '"avx512f" not in flags', "AVX-512 without BF16 taken for a bfloat16 CPU"),
    Mutant("dtype", "pipeline/teachers/cpu_dtype.py", 'if t.dtype != "auto" or t.num_gpus:',
           'if t.dtype != "auto":', "GPU engines made to run in float32"),
    Mutant("dtype", "pipeline/teachers/local_server.py",
           "*as_flags(model_settings(self.cfg, str(model)))",
           '*as_flags({**model_settings(self.cfg, str(model)), "dtype": self.cfg.dtype})',
           "the server started in vLLM's choice, not this CPU's"),
    Mutant("dtype", "pipeline/teachers/offline_engine.py",
           "elif value is not False and value is not None:", "elif value is not None:",
           "a setting that is off passed to the server as the word False"),
    Mutant("dtype", "pipeline/teachers/backends/vllm_engines.py",
           "t.kv_cache_gib, t.dtype,", "t.kv_cache_gib,", "engines of two formats taken as one"),
    # reading the user's files
    Mutant("reading", R, "ok = isinstance(value, int) and not isinstance(value, bool)",
           "ok = isinstance(value, int | float) and not isinstance(value, bool)",
           "an integer field accepts 1.5"),
    Mutant("reading", R, '"bool": isinstance(value, bool)}', '"bool": True}',
           "anything is a bool"),
    Mutant("reading", R, 'value.encode("utf-8")', 'value.encode("utf-8", "surrogatepass")',
           "lone surrogates let through"),
    Mutant("reading", R, "extra = sorted(set(value) - set(feature))", "extra = []",
           "unknown fields inside a message ignored"),
    Mutant("reading", R, 'text = raw.decode("utf-8")', 'text = raw.decode("utf-8", "replace")',
           "invalid UTF-8 silently replaced"),
    # deduplication
    Mutant("dedup", ED, "for keep, digest, rid, pid, prompt in sorted(rows):",
           "for keep, digest, rid, pid, prompt in rows:", "the kept row is not the first by rank"),
    Mutant("dedup", ND, "if threshold is None or jaccard(sa, sb) >= threshold:",
           "if threshold is None or jaccard(sa, sb) >= threshold - 0.3:", "loose verification"),
    Mutant("dedup", ND, "if len(words) <= n:", "if len(words) <= 2 * n:",
           "medium prompts compared whole"),
    Mutant("dedup", ND, "return len(a & b) / len(a | b)", "return len(a & b) / max(len(a), 1)",
           "containment instead of Jaccard"),
    # the SFT/RL split
    Mutant("split", SP, "units.setdefault(group or pid, [])", "units.setdefault(pid, [])",
           "a prompt group may land on both sides"),
    Mutant("split", SP, "if taken[home] + own > target[home]:",
           "if taken[home] + own > target[home] + 1:", "a source overshoots its share"),
    Mutant("split", SP, "order = sorted(units, key=lambda u: rank_key(seed,",
           "order = sorted(units, key=lambda u: rank_key(0,", "the seed ignored"),
    Mutant("split", SP, "target = {s: round(self.params.distill_fraction * n)",
           "target = {s: round(self.params.distill_fraction * len(ids))",
           "the fraction of all rows, not per source"),
    # the token caps
    Mutant("token_lengths", "stages/token_lengths.py",
           "if cap is not None and k is not None and k > cap]",
           "if cap is not None and k is not None and k >= cap]", "a row of exactly `cap` tokens cut"),
    # the manifest
    Mutant("manifest", M, '**misplaced, "balanced": not misplaced}',
           '**misplaced, "balanced": accounted >= n_in}', "balanced means at least"),
    Mutant("manifest", M, "seen[counts > 1]", "seen[counts > 2]",
           "a row in two places not named"),
    Mutant("manifest", M, '            self.filter_rejections[("pass 1", p1["reason"])] += 1\n', "",
           "pass 1's cost forgotten for pairs pass 2 took back"),
    Mutant("manifest", M, '"sft_rows": totals[f"{KEPT}_sft"] + sum(tally.both_orders.values()),',
           '"sft_rows": totals[f"{KEPT}_sft"],', "second-order rows not counted"),
    Mutant("manifest", M, "        alive += n_added - n_removed\n", "        alive += n_added\n",
           "stage rows out ignore earlier stages"),
    Mutant("manifest", M, 'bucket = f"kept_{split}" if outcome == KEPT else outcome',
           'bucket = f"kept_{split}" if outcome != REJECTED else outcome', "non-kept rows as kept"),
]


def copy_tree(dest: Path) -> None:
    """The files git tracks, and those it would (new, not ignored), as they are now."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def run_tests(tree: Path, tests: list[str]) -> tuple[int, float]:
    start = time.monotonic()
    # Ray's workers are other processes: the copy goes first on their path too
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(tree), os.environ.get("PYTHONPATH")]))}
    try:
        rc = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
                             "-m", MARKERS, *tests], cwd=tree, capture_output=True,
                            timeout=TIMEOUT_S, env=env).returncode
    except subprocess.TimeoutExpired:
        rc = -1  # a mutant that hangs the tests is caught: they did not pass
    return rc, time.monotonic() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--module", action="append", choices=sorted(TESTS),
                        help="only the mutants of this group (repeat for several)")
    args = parser.parse_args()
    chosen = [m for m in MUTANTS if not args.module or m.module in args.module]
    for m in chosen:  # a mutant that no longer applies is this script's bug: say so first
        found = (ROOT / m.path).read_text(encoding="utf-8").count(m.old)
        if found != 1:
            print(f"mutant '{m.why}': {m.path} holds its text {found} times, not once; update it "
                  "in bench/mutation_check.py", file=sys.stderr)
            return 2
    with tempfile.TemporaryDirectory(prefix="rubricforge-mutants-") as tmp:
        tree = Path(tmp)
        copy_tree(tree)
        groups = sorted({m.module for m in chosen})
        for group in groups:  # the unmutated tests must pass, or no mutant means anything
            rc, _ = run_tests(tree, TESTS[group])
            if rc != 0:
                print(f"the tests of '{group}' fail without any mutant (exit {rc}): fix them "
                      "first", file=sys.stderr)
                return 2
        survivors, killed = [], {g: 0 for g in groups}
        for m in chosen:
            target = tree / m.path
            original = target.read_text(encoding="utf-8")
            target.write_text(original.replace(m.old, m.new), encoding="utf-8")
            try:
                rc, took = run_tests(tree, TESTS[m.module])
            finally:
                target.write_text(original, encoding="utf-8")
            caught = rc != 0
            killed[m.module] += caught
            if not caught:
                survivors.append(m)
            print(f"{'caught  ' if caught else 'SURVIVED'} {m.module:10} {took:5.0f}s  {m.why}",
                  flush=True)
    print("\n| module | mutants | caught | score |\n|---|---|---|---|")
    for group in groups:
        n = sum(m.module == group for m in chosen)
        print(f"| {group} | {n} | {killed[group]} | {killed[group] / n:.0%} |")
    total = sum(killed.values())
    print(f"| all | {len(chosen)} | {total} | {total / len(chosen):.0%} |")
    for m in survivors:
        print(f"survived: {m.module}: {m.why} ({m.path})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

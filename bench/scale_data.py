"""Hub-schema-exact synthetic files for the `rmr1` sources and the reward benchmarks, at their
published sizes (DESIGN.md section 2; the benchmarks with their published subsets, domains and
goals, so an eval at scale exercises each scoring rule) or any multiple of them.

Texts are Zipf-distributed words with log-normal lengths (bench/synth_pairs.py's model), the
words taken from the embedded model's tokenizer vocabulary in its merge order (so a word is one
token, as common English words are), so n-gram decontamination, MinHash dedup and tokenizers
see realistic work. Injected on purpose,
so every stage has something to decide: Skywork's `magpie_ultra` subset (about 30%, dropped by
the recipe) and multi-turn conversations (about 10%), repeated pairs (1%), exact and
near-duplicate prompts across
sources, benchmark prompts copied into the sources, rows the sources must quarantine (an empty
answer, identical answers), and Math-Step-DPO's step-split answers.

    .venv/bin/python bench/scale_data.py --out /tmp/scale --scale 1
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script too

from stages.benchmarks.pairwise import RewardBench, RewardBench2, RMBench  # noqa: E402

# Published sizes (rows) of each file at --scale 1. The benchmarks' are the sums of their
# subsets' and domains' published sizes (stages/benchmarks/pairwise.py, RMB_PAIRWISE, RMB_BON).
SIZES = {"skywork": 77_016, "code_preference_pairs": 55_000, "math_step_dpo": 10_795,
         "rewardbench": sum(RewardBench.SIZES.values()), "rewardbench2": sum(RewardBench2.SIZES.values()),
         "rm_bench": sum(RMBench.SIZES.values()), "rmb": 14_543, "rmb_bon": 3_786}
# RMB per goal, counted in its repository at 2be3180 (pairwise: the 46 of 49 files a copy held;
# best-of-N: all 49 files, 2 to 6 rejected answers per item, mostly 2).
RMB_PAIRWISE = {"Helpfulness": 8_456, "Harmlessness": 6_087}
RMB_BON = {"Helpfulness": 2_109, "Harmlessness": 1_677}
BON_LOSERS = (2, 2, 2, 2, 3)  # cycled: about RMB's mix
SKYWORK_SUBSETS = ("magpie_ultra", "magpie_pro_llama3.1", "offsetbias", "wildguard", "helpsteer2",
                   "magpie_pro", "magpie_air")
SUBSET_WEIGHTS = (0.30, 0.25, 0.10, 0.08, 0.10, 0.09, 0.08)
MATH_DATASETS = ("GSM_Rephrased", "MATH_AnsAug", "MATH_Rephrased", "GSM_AnsAug")
VOCAB = 50_000
MESSAGE = pa.struct([("content", pa.string()), ("role", pa.string())])


def vocabulary() -> list[str]:
    """Whole lower-case words of the embedded tokenizer, most frequent (first merged) first;
    `w<rank>` placeholders (several tokens each) when it cannot be loaded."""
    try:
        from pipeline.teachers.tokenizers import load_tokenizer, local_model_dir

        tok = load_tokenizer(local_model_dir("~/.cache/rubricforge/models"), "bench")
        ranked = sorted(tok.get_vocab().items(), key=lambda kv: kv[1])
        words = [t[1:] for t, _ in ranked if t.startswith("\u0120") and t[1:].isalpha()
                 and t[1:].islower() and t[1:].isascii() and (len(t) > 2 or t == "\u0120a")]
    except Exception:
        words = []
    return words if len(words) > 1000 else [f"w{i}" for i in range(VOCAB)]


class Words:
    """Texts of Zipf-distributed words, drawn in bulk (one numpy call per file column)."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.vocab = np.array(vocabulary(), dtype=object)

    def texts(self, n: int, median_words: float, sigma: float, cap: int = 3000) -> list[str]:
        lengths = np.clip(self.rng.lognormal(np.log(median_words), sigma, n).astype(int), 3, cap)
        # ranks past the vocabulary wrap around (clipping would pile the tail on one word)
        ranks = (self.rng.zipf(1.2, int(lengths.sum())) - 1) % len(self.vocab)
        words = self.vocab[ranks]
        ends = np.cumsum(lengths)
        return [" ".join(words[e - k:e]) for e, k in zip(ends, lengths, strict=True)]


def _edit(text: str, rng: np.random.Generator, rate: float = 0.01) -> str:
    words = text.split()
    for pos in rng.choice(len(words), size=max(1, int(rate * len(words))), replace=False):
        words[pos] = f"x{int(rng.integers(0, 10**9))}"
    return " ".join(words)


def _leak_prompts(prompts: list[str], pool: list[str], rng: np.random.Generator,
                  dup_share: float, leak_share: float, bench: list[str]) -> None:
    """Overwrite a share of prompts with exact or edited copies of `pool` prompts (another
    source's or earlier rows'), and a share with benchmark prompts."""
    n = len(prompts)
    for i in rng.choice(n, size=int(n * dup_share), replace=False):
        src = pool[int(rng.integers(0, len(pool)))]
        prompts[i] = src if rng.random() < 0.5 else _edit(src, rng)
    for i in rng.choice(n, size=int(n * leak_share), replace=False):
        prompts[i] = bench[int(rng.integers(0, len(bench)))]


def _repeat_pairs(columns: list[list[str]], rng: np.random.Generator, share: float) -> None:
    """Overwrite a share of rows with a copy of another whole row (the same pair twice)."""
    n = len(columns[0])
    for i in rng.choice(n, size=int(n * share), replace=False):
        j = int(rng.integers(0, n))
        for col in columns:
            col[i] = col[j]


def _turns(*pairs: tuple[str, str]) -> list[dict[str, str]]:
    return [{"content": c, "role": r} for r, c in pairs]


def skywork(n: int, words: Words, bench: list[str]) -> tuple[pa.Table, list[str]]:
    rng = words.rng
    prompts = words.texts(n, 45, 0.9)
    _leak_prompts(prompts, list(prompts), rng, 0.03, 0.005, bench)
    chosen, rejected = words.texts(n, 180, 0.8), words.texts(n, 160, 0.8)
    _repeat_pairs([prompts, chosen, rejected], rng, 0.01)
    subsets = rng.choice(len(SKYWORK_SUBSETS), size=n, p=SUBSET_WEIGHTS)
    multi = rng.random(n) < 0.10
    bad = rng.choice(n, size=max(1, n // 2000), replace=False)  # quarantined: empty answer
    extra_user, extra_bot = words.texts(n, 30, 0.8), words.texts(n, 120, 0.8)
    c_col, r_col = [], []
    for i in range(n):
        head = _turns(("user", prompts[i]))
        if multi[i]:
            head += _turns(("assistant", extra_bot[i]), ("user", extra_user[i]))
        c_col.append(head + _turns(("assistant", chosen[i])))
        r_col.append(head + _turns(("assistant", "" if i in bad else rejected[i])))
    table = pa.table({"chosen": pa.array(c_col, pa.list_(MESSAGE)),
                      "rejected": pa.array(r_col, pa.list_(MESSAGE)),
                      "source": pa.array([SKYWORK_SUBSETS[s] for s in subsets], pa.string())})
    return table, prompts


def code_pairs(n: int, words: Words, pool: list[str], bench: list[str]) -> pa.Table:
    rng = words.rng
    prompts = words.texts(n, 60, 0.8)
    _leak_prompts(prompts, pool + prompts, rng, 0.02, 0.005, bench)
    accepted, rejected = words.texts(n, 220, 0.7), words.texts(n, 220, 0.7)
    _repeat_pairs([prompts, accepted, rejected], rng, 0.01)
    for i in rng.choice(n, size=max(1, n // 2000), replace=False):  # quarantined: same answers
        rejected[i] = accepted[i]
    return pa.table({"input": prompts, "accepted": accepted, "rejected": rejected})


def math_step_dpo(n: int, words: Words, bench: list[str]) -> pa.Table:
    rng = words.rng
    prompts = words.texts(n, 50, 0.6)
    _leak_prompts(prompts, list(prompts), rng, 0.01, 0.01, bench)
    steps = [f"Step 1: {t}\n" for t in words.texts(n, 60, 0.6)]
    chosen = [f"Step 2: {t}" for t in words.texts(n, 40, 0.6)]
    rejected = [f"Step 2: {t}" for t in words.texts(n, 40, 0.6)]
    answers = [str(int(a)) for a in rng.integers(0, 1000, n)]
    return pa.table({
        "dataset": [MATH_DATASETS[int(k)] for k in rng.integers(0, len(MATH_DATASETS), n)],
        "prompt": prompts, "initial_reason_steps": steps, "chosen": chosen, "rejected": rejected,
        "full_chosen": [f"{c}\nThe answer is: {a}" for c, a in zip(chosen, answers, strict=True)],
        "full_rejected": [f"{r}\nThe answer is: {int(a) + 1}"
                          for r, a in zip(rejected, answers, strict=True)],
        "answer": answers})


def _labels(sizes: dict[str, int], n: int) -> list[str]:
    """`n` labels in the published proportions of `sizes`, each label's rows together (as the
    benchmarks list them); every label at least once where `n` has room for all."""
    total = sum(sizes.values())
    counts = {k: max(1, round(v * n / total)) for k, v in sizes.items()}
    return [k for k, c in counts.items() for _ in range(c)][:n] + [next(iter(sizes))] * max(
        0, n - sum(counts.values()))


def write_benchmarks(out: Path, scale: float, words: Words) -> dict[str, list[str]]:
    """The benchmarks in their published layouts, sizes and subsets (or domains, or goals);
    returns their prompts."""
    prompts: dict[str, list[str]] = {}
    # benchmarks keep their published sizes whatever the training data's scale (smaller only
    # for the tests' tiny builds)
    n = {k: max(12, int(SIZES[k] * min(scale, 1.0)))
         for k in ("rewardbench", "rewardbench2", "rm_bench", "rmb", "rmb_bon")}
    prompts["rewardbench"] = words.texts(n["rewardbench"], 40, 0.9)
    subsets = _labels(RewardBench.SIZES, n["rewardbench"])
    with (out / "rewardbench.jsonl").open("w") as f:
        for i, (p, subset) in enumerate(zip(prompts["rewardbench"], subsets, strict=True)):
            f.write(json.dumps({"prompt": p, "chosen": "c", "chosen_model": "m1", "rejected": "r",
                                "rejected_model": "m2", "subset": subset, "id": i}) + "\n")
    prompts["rewardbench2"] = words.texts(n["rewardbench2"], 40, 0.9)
    subsets = _labels(RewardBench2.SIZES, n["rewardbench2"])
    with (out / "rewardbench2.jsonl").open("w") as f:
        ties = 0
        for i, (p, subset) in enumerate(zip(prompts["rewardbench2"], subsets, strict=True)):
            row_id, chosen = str(i), ["c"]
            if subset == "Ties":  # a prompt as a ref: item (one correct answer) and a tied: one
                k, ties = ties // 2, ties + 1
                row_id = f"ref:{k}" if ties % 2 else f"tied:{k}"
                chosen = ["c1"] if ties % 2 else ["c1", "c2", "c3"]
                p = prompts["rewardbench2"][i - 1] if not ties % 2 else p
            f.write(json.dumps({"id": row_id, "prompt": p, "chosen": chosen,
                                "rejected": ["r1", "r2", "r3"], "num_correct": len(chosen),
                                "num_incorrect": 3, "total_completions": len(chosen) + 3,
                                "models": ["a", "b", "c", "d"], "subset": subset}) + "\n")
    prompts["rm_bench"] = words.texts(n["rm_bench"], 40, 0.9)
    domains = _labels(RMBench.SIZES, n["rm_bench"])
    (out / "rm_bench.json").write_text(json.dumps([
        {"id": i, "prompt": p, "chosen": ["c1", "c2", "c3"], "rejected": ["r1", "r2", "r3"],
         "domain": d} for i, (p, d) in enumerate(zip(prompts["rm_bench"], domains, strict=True))]))
    prompts["rmb"] = words.texts(n["rmb"], 40, 0.9)
    goals = _labels(RMB_PAIRWISE, n["rmb"])
    (out / "rmb.json").write_text(json.dumps([
        {"pair_uid": str(i), "conversation_input": [{"content": p, "language": "English", "role": "user"}],
         "chosen": {"llm_name": "a", "answer": "c", "score": 4.5},
         "reject": {"llm_name": "b", "answer": "r", "score": 2.0},
         "category_path": f"Pairwise_set/{g}/Chat"}
        for i, (p, g) in enumerate(zip(prompts["rmb"], goals, strict=True))]))
    # best-of-N items share the pairwise set's prompts (as RMB's do)
    goals = _labels(RMB_BON, n["rmb_bon"])
    (out / "rmb_bon.json").write_text(json.dumps([
        {"bon_uid": str(i), "conversation_input": [{"content": prompts["rmb"][i % len(prompts["rmb"])],
                                                    "language": "English", "role": "user"}],
         "bon_best": {"llm_name": "a", "answer": "c"},
         "loser_list": [{"llm_name": f"m{k}", "answer": f"r{k}"}
                        for k in range(BON_LOSERS[i % len(BON_LOSERS)])],
         "category_path": f"BoN_set/{g}/Chat"} for i, g in enumerate(goals)]))
    return prompts


def write_all(out: Path, scale: float = 1.0, seed: int = 0, files_per_source: int = 4) -> dict[str, int]:
    """Write every file under `out`; returns rows per source. Sources are split over several
    Parquet files, as the Hub serves them."""
    out.mkdir(parents=True, exist_ok=True)
    words = Words(seed)
    bench = write_benchmarks(out, scale, words)
    leaks = [p for ps in bench.values() for p in ps if len(p.split()) >= 13]
    n = {k: max(4, int(SIZES[k] * scale)) for k in ("skywork", "code_preference_pairs", "math_step_dpo")}
    sky, sky_prompts = skywork(n["skywork"], words, leaks)
    tables = {"skywork": sky,
              "code_preference_pairs": code_pairs(n["code_preference_pairs"], words, sky_prompts, leaks),
              "math_step_dpo": math_step_dpo(n["math_step_dpo"], words, leaks)}
    for name, table in tables.items():
        folder = out / name
        folder.mkdir(exist_ok=True)
        step = -(-table.num_rows // files_per_source)
        for k, start in enumerate(range(0, table.num_rows, step)):
            pq.write_table(table.slice(start, step), folder / f"train-{k:05d}.parquet")
    return {name: t.num_rows for name, t in tables.items()}


def data_overrides(out: Path) -> list[str]:
    """The build overrides that read these files instead of the Hub."""
    over = [f"sources.{s}.data_files={out / s}/*.parquet"
            for s in ("skywork", "code_preference_pairs", "math_step_dpo")]
    files = {"rewardbench": "rewardbench.jsonl", "rewardbench2": "rewardbench2.jsonl",
             "rm_bench": "rm_bench.json", "rmb": "rmb.json", "rmb_bon": "rmb_bon.json"}
    return over + [f"benchmarks.{b}.data_files={out / f}" for b, f in files.items()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--scale", type=float, default=1.0, help="multiple of the published sizes")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    print(write_all(args.out, args.scale, args.seed))


if __name__ == "__main__":
    main()

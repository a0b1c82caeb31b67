"""Synthetic preference pairs for the dedup and decontamination benchmarks, with known
near-duplicates and known leaks of benchmark prompts.

Prompt lengths follow a log-normal distribution (median ~45 words, a long tail to ~2,000),
words a Zipf distribution over a 50K vocabulary, so unrelated prompts share common words as
real ones do. A share of rows are edited copies of earlier rows (some words replaced); the true
Jaccard similarity of every injected pair is computed exactly with the stage's own shingles.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.rules.keys import normalize
from stages.near_dedup import jaccard, shingles

VOCAB = 50_000


@dataclass
class Injected:
    original: int
    copy: int
    jaccard: float


def _words(rng: np.random.Generator, n: int) -> list[str]:
    ranks = np.minimum(rng.zipf(1.2, size=n), VOCAB)
    return [f"w{r}" for r in ranks]


def generate(n: int, dup_share: float = 0.05, seed: int = 0, ngram: int = 5
             ) -> tuple[list[dict], list[Injected]]:
    """n canonical pairs (prompt only varies), and the injected near-duplicate pairs."""
    rng = np.random.default_rng(seed)
    lengths = np.clip(rng.lognormal(mean=3.8, sigma=0.8, size=n).astype(int), 8, 2000)
    rows: list[dict] = []
    texts: list[list[str]] = []
    injected: list[Injected] = []
    # edit rates chosen to spread injected pairs over Jaccard ~0.5 .. ~0.98
    edit_rates = [0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.08]
    for i in range(n):
        if i > 10 and rng.random() < dup_share:
            j = int(rng.integers(0, i))
            words = list(texts[j])
            rate = edit_rates[int(rng.integers(0, len(edit_rates)))]
            k = max(1, int(round(rate * len(words))))
            for pos in rng.choice(len(words), size=min(k, len(words)), replace=False):
                words[pos] = f"x{int(rng.integers(0, 10**9))}"
            a = shingles(normalize(" ".join(texts[j])), ngram)
            b = shingles(normalize(" ".join(words)), ngram)
            injected.append(Injected(j, i, jaccard(a, b)))
        else:
            words = _words(rng, int(lengths[i]))
        texts.append(words)
        rows.append({"pair_id": f"p{i:08d}", "source": "synthetic", "source_index": i,
                     "outcome": "", "prompt": [{"role": "user", "content": " ".join(words)}],
                     "chosen": [{"role": "assistant", "content": "a"}],
                     "rejected": [{"role": "assistant", "content": "b"}]})
    return rows, injected


# How a benchmark prompt can reach a training set: copied, re-spaced, re-cased, lightly edited
# (about one word in 25 replaced), or quoted inside a longer request.
LEAK_KINDS = ("verbatim", "respaced", "recased", "edited", "embedded")


@dataclass
class Leak:
    row: int
    benchmark_id: str
    kind: str
    words: int  # length of the benchmark prompt


def benchmark_texts(n: int, seed: int = 1) -> list[str]:
    """Benchmark-like prompts: the same length and word distributions as the pairs."""
    rng = np.random.default_rng(seed)
    lengths = np.clip(rng.lognormal(mean=3.8, sigma=0.8, size=n).astype(int), 4, 2000)
    return [" ".join(_words(rng, int(k))) for k in lengths]


def _leak(text: str, kind: str, rng: np.random.Generator) -> str:
    words = text.split()
    if kind == "respaced":
        seps = rng.choice(["  ", "\n", " \t", "   \n "], size=len(words))
        return "".join(w + str(s) for w, s in zip(words, seps, strict=True)).strip()
    if kind == "recased":
        return text.upper() if rng.random() < 0.5 else text.title()
    if kind == "edited":
        for pos in rng.choice(len(words), size=max(1, len(words) // 25), replace=False):
            words[pos] = f"x{int(rng.integers(0, 10**9))}"
        return " ".join(words)
    if kind == "embedded":
        return f"Here is a question. {text} Answer step by step, citing sources."
    return text


def inject_leaks(rows: list[dict], benchmark: list[str], share: float = 0.01, seed: int = 2
                 ) -> list[Leak]:
    """Replace a share of the rows' prompts with leaked benchmark prompts, kinds in turn."""
    rng = np.random.default_rng(seed)
    picked = rng.choice(len(rows), size=int(len(rows) * share), replace=False)
    leaks = []
    for k, i in enumerate(sorted(picked.tolist())):
        b = int(rng.integers(0, len(benchmark)))
        kind = LEAK_KINDS[k % len(LEAK_KINDS)]
        rows[i]["prompt"] = [{"role": "user", "content": _leak(benchmark[b], kind, rng)}]
        leaks.append(Leak(i, str(b), kind, len(benchmark[b].split())))
    return leaks

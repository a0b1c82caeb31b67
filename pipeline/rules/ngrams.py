"""Word n-gram overlap between training prompts and benchmark prompts.

Texts are compared as words of their normalized form (case, spacing, Unicode forms and
punctuation do not count), so a re-cased or re-spaced copy of a benchmark prompt still matches.
Every n-gram is hashed to 64 bits; the benchmark side is a sorted array, so a lookup is a
binary search and the index of all four reward benchmarks fits in a few MB.

A benchmark prompt shorter than n words has no n-gram; it matches a training prompt with
exactly the same words ("What is 2+2?"), never a longer prompt that merely contains it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from pipeline.rules.keys import normalize

_WORD = re.compile(r"\w+")
# Odd 64-bit multiplier for the polynomial that folds n word hashes into one n-gram hash.
_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)


def words(text: str) -> list[str]:
    """The words a text is compared by: normalized, punctuation dropped."""
    return _WORD.findall(normalize(text))


# Words are few and repeat (Zipf): each process hashes each word once.
_WORD_HASHES: dict[str, int] = {}
_MAX_WORDS = 2_000_000


def _word_hash(w: str) -> int:
    h = _WORD_HASHES.get(w)
    if h is None:
        if len(_WORD_HASHES) >= _MAX_WORDS:
            _WORD_HASHES.clear()
        h = _WORD_HASHES[w] = int.from_bytes(hashlib.blake2b(w.encode(), digest_size=8).digest(),
                                             "little")
    return h


def _word_hashes(ws: list[str]) -> np.ndarray:
    return np.fromiter(map(_word_hash, ws), np.uint64, len(ws))


def _powers(n: int) -> np.ndarray:
    out = np.ones(n, dtype=np.uint64)
    for i in range(n - 2, -1, -1):
        out[i] = out[i + 1] * _MULTIPLIER
    return out


def ngram_hashes(ws: list[str], n: int) -> np.ndarray:
    """The distinct hashes of a word list's n-grams (empty when it has fewer than n words)."""
    if len(ws) < n:
        return np.empty(0, dtype=np.uint64)
    windows = np.lib.stride_tricks.sliding_window_view(_word_hashes(ws), n)
    with np.errstate(over="ignore"):  # arithmetic modulo 2**64 is the point
        return np.unique((windows * _powers(n)).sum(axis=1, dtype=np.uint64))


def whole_hash(ws: list[str]) -> np.uint64:
    """One hash of the whole word sequence, for prompts too short to have an n-gram."""
    digest = hashlib.blake2b("\x1f".join(ws).encode(), digest_size=8).digest()
    return np.frombuffer(digest, dtype="<u8").astype(np.uint64)[0]


@dataclass
class Match:
    """How a training prompt overlaps one benchmark."""

    benchmark: str
    prompt_id: str  # the benchmark prompt that shares the most n-grams
    shared: int  # n-grams shared with that benchmark (0 for a whole-prompt match)
    whole: bool


@dataclass
class NgramIndex:
    """Benchmark prompts as sorted hash arrays, with the prompt each hash came from."""

    n: int
    benchmarks: list[str]
    prompt_ids: list[str] = field(default_factory=list)
    prompt_benchmark: list[int] = field(default_factory=list)
    grams: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.uint64))
    gram_prompt: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    wholes: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.uint64))
    whole_prompt: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    # per benchmark: prompts indexed, of which too short for an n-gram
    stats: dict[str, dict[str, int]] = field(default_factory=dict)

    @classmethod
    def build(cls, n: int, prompts: dict[str, Iterable[tuple[str, str]]]) -> NgramIndex:
        """`prompts`: benchmark name -> (prompt id, text) pairs."""
        index = cls(n=n, benchmarks=list(prompts))
        grams, gram_owner, wholes, whole_owner = [], [], [], []
        for b, (name, items) in enumerate(prompts.items()):
            seen: set[int] = set()
            short = total = 0
            for prompt_id, text in items:
                ws = words(text)
                if not ws:
                    continue
                total += 1
                owner = len(index.prompt_ids)
                index.prompt_ids.append(str(prompt_id))
                index.prompt_benchmark.append(b)
                hashes = ngram_hashes(ws, n)
                if len(hashes):
                    # one entry per (hash, benchmark): the first prompt that has it
                    fresh = np.array([h for h in hashes.tolist() if h not in seen], dtype=np.uint64)
                    seen.update(fresh.tolist())
                    grams.append(fresh)
                    gram_owner.append(np.full(len(fresh), owner, dtype=np.int64))
                else:
                    short += 1
                    wholes.append(whole_hash(ws))
                    whole_owner.append(owner)
            index.stats[name] = {"prompts": total, "shorter_than_n": short, "ngrams": len(seen)}
        if grams:
            g, o = np.concatenate(grams), np.concatenate(gram_owner)
            order = np.argsort(g, kind="stable")
            index.grams, index.gram_prompt = g[order], o[order]
        if wholes:
            w, o = np.array(wholes, dtype=np.uint64), np.array(whole_owner, dtype=np.int64)
            order = np.argsort(w, kind="stable")
            index.wholes, index.whole_prompt = w[order], o[order]
        return index

    def matches_all(self, texts: list[str]) -> list[list[Match]]:
        """`matches` of each text. Overlap is rare: one vectorized lookup of every text's
        n-grams finds the texts that share any, and only those are looked at one by one."""
        ws = [words(t) for t in texts]
        return [self._matches(w) if hit else [] for w, hit in zip(ws, self._any_hit(ws),
                                                                  strict=True)]

    def _any_hit(self, ws: list[list[str]]) -> np.ndarray:
        """Whether each word list shares an n-gram with the index, or is a short prompt's."""
        n, hit = self.n, np.zeros(len(ws), dtype=bool)
        lens = np.fromiter(map(len, ws), np.int64, len(ws))
        flat = _word_hashes([w for one in ws for w in one])
        if len(flat) >= n and len(self.grams):
            with np.errstate(over="ignore"):  # arithmetic modulo 2**64, as in ngram_hashes
                grams = np.zeros(len(flat) - n + 1, dtype=np.uint64)
                for j, power in enumerate(_powers(n)):  # n passes, no (windows x n) array
                    grams += flat[j:j + len(grams)] * power
            row = np.repeat(np.arange(len(ws)), lens)[:len(grams)]
            ends = np.cumsum(lens)[row]
            inside = np.arange(len(grams)) + n <= ends  # windows that do not cross rows
            grams, row = grams[inside], row[inside]
            at = np.minimum(np.searchsorted(self.grams, grams), len(self.grams) - 1)
            hit[row[self.grams[at] == grams]] = True
        short = np.flatnonzero((lens > 0) & (lens < n))
        if len(self.wholes) and len(short):  # a short benchmark prompt matches the same words
            wholes = np.array([whole_hash(ws[i]) for i in short.tolist()], dtype=np.uint64)
            at = np.minimum(np.searchsorted(self.wholes, wholes), len(self.wholes) - 1)
            hit[short[self.wholes[at] == wholes]] = True
        return hit

    def matches(self, text: str) -> list[Match]:
        """The benchmarks a training prompt overlaps, in the index's benchmark order."""
        return self._matches(words(text))

    def _matches(self, ws: list[str]) -> list[Match]:
        if not ws:
            return []
        shared: dict[int, dict[int, int]] = {}  # benchmark -> prompt -> n-grams shared
        whole: dict[int, int] = {}
        hashes = ngram_hashes(ws, self.n)
        if len(hashes) and len(self.grams):
            lo = np.searchsorted(self.grams, hashes, side="left")
            hi = np.searchsorted(self.grams, hashes, side="right")
            for a, b in zip(lo[hi > lo].tolist(), hi[hi > lo].tolist(), strict=True):
                for owner in self.gram_prompt[a:b].tolist():
                    per = shared.setdefault(self.prompt_benchmark[owner], {})
                    per[owner] = per.get(owner, 0) + 1
        if len(self.wholes):
            h = whole_hash(ws)
            a = int(np.searchsorted(self.wholes, h, side="left"))
            b = int(np.searchsorted(self.wholes, h, side="right"))
            for owner in self.whole_prompt[a:b].tolist():
                whole.setdefault(self.prompt_benchmark[owner], owner)
        out = []
        for b, name in enumerate(self.benchmarks):
            if b in whole:
                out.append(Match(name, self.prompt_ids[whole[b]], 0, True))
            elif b in shared:
                owner, count = max(shared[b].items(), key=lambda kv: (kv[1], -kv[0]))
                out.append(Match(name, self.prompt_ids[owner], sum(shared[b].values()), False))
        return out

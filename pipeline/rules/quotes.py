"""How faithfully a judge's quote reproduces the text it cites, as a share of its words.

A quote is evidence. What makes it false is words the cited text does not have: an invented
sentence, a sentence of the other answer, the question. What does not is how a judge types it:
pieces joined by an ellipsis, "and" or commas; an editorial "[sic]" or a trailing "etc."; LaTeX
written plainly (`\\frac{3}{4}` as `3/4`); markdown, case, quote marks; the judge's own words
around a quoted passage. So a quote is read as pieces, each aligned on its own against the text
(an edit distance over words, the text's ends free), and its fidelity is the share of its words
the alignment matches: one dropped or changed word costs that word, not the quote. Two kinds of
word change what the evidence says and void their piece: a number the text does not have in
that place, and a negation added or dropped.

Calibrated on real judges' traces and written cases of each shape (tests/data/traces,
bench/trace_checks.py).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

# Letters and digits only: markdown, bullets, quote-mark style and punctuation are typesetting.
_TOKEN = re.compile(r"[^\W_]+")
# LaTeX commands are notation, not words, except those read aloud as words in plain text.
_LATEX = re.compile(r"\\([A-Za-z]+)")
_SPOKEN = frozenset({"sqrt", "pi", "sin", "cos", "tan", "log", "ln", "exp", "lim", "min", "max",
                     "infty", "le", "ge", "neq"})
# A link's target, and a bare address: judges quote the sentence around a link without it.
_LINK_TARGET = re.compile(r"\]\([^)\s]*\)|\bhttps?://\S+|\bwww\.\S+")
# Where a judge joins pieces that are not adjacent in the text: an ellipsis, a sentence or
# clause end, a comma, a line break, "and" between items.
_PIECES = re.compile(r"\.\.\.|\u2026|(?<=[.!?:;,])\s+|\n|\s+and\s+", re.I)
# Marks a judge adds inside a quote: a bracketed note ("[sic]", "[odd totals]"; a markdown link
# "[text](url)" is the answer's own) and a closing "etc." or "and so on".
_EDITORIAL = re.compile(r"\[[^\]\n]{0,80}\](?!\()|\betc\b\.?|\band so on\b", re.I)
# Passages the judge put in quote marks, inside a tag that also holds its own words.
_PASSAGE = re.compile(r"\"([^\"]+)\"|\u201c([^\u201d]+)\u201d")
# A word that flips what a sentence says ("don't" reads as "don t").
NEGATIONS = frozenset({"not", "no", "never", "none", "nothing", "nobody", "neither", "nor",
                       "cannot", "t", "without"})


@dataclass(frozen=True)
class Fidelity:
    """A quote against one text: the share of its words found in order there (0 to 1), and the
    word that voids a piece, if one does."""

    share: float
    flaw: str = ""


def words(text: str) -> list[str]:
    """Case-folded words with LaTeX notation and typesetting removed: what a quote must
    reproduce."""
    text = _LATEX.sub(lambda m: f" {m.group(1)} " if m.group(1) in _SPOKEN else " ",
                      unicodedata.normalize("NFKC", text))
    return _TOKEN.findall(text.casefold())


@lru_cache(maxsize=256)
def _bodies(text: str) -> tuple[tuple[str, np.ndarray], ...]:
    """A text's words as written and without link targets, joined (for the exact look-up) and
    as an array (for the alignment). A trace quotes the same answer several times."""
    out = []
    for variant in dict.fromkeys((text, _LINK_TARGET.sub(" ", text))):
        w = words(variant)
        out.append((f" {' '.join(w)} ", np.array(w, dtype=str)))
    return tuple(out)


def _align(piece: list[str], body: np.ndarray) -> tuple[int, list[tuple[str | None, str | None]]]:
    """The fewest word edits that turn `piece` into some run of `body`, and the alignment
    (piece word, body word), None where one side has no word.

    One row of the edit-distance table per piece word, each computed over the whole body at
    once: a cell's left neighbour enters through a running minimum of (cell - column)."""
    m = len(body)
    cols = np.arange(m + 1)
    rows = [np.zeros(m + 1, dtype=np.int64)]  # an empty piece matches anywhere for free
    for i, w in enumerate(piece, 1):
        prev = rows[-1]
        best = np.empty(m + 1, dtype=np.int64)
        best[0] = i
        best[1:] = np.minimum(prev[:-1] + (body != w), prev[1:] + 1)
        rows.append(np.minimum.accumulate(best - cols) + cols)
    j = int(np.argmin(rows[-1]))
    edits, pairs, i = int(rows[-1][j]), [], len(piece)
    while i > 0:
        here, up = rows[i][j], rows[i - 1]
        if j > 0 and here == up[j - 1] + (body[j - 1] != piece[i - 1]):
            pairs.append((piece[i - 1], str(body[j - 1])))
            i, j = i - 1, j - 1
        elif here == up[j] + 1:
            pairs.append((piece[i - 1], None))
            i -= 1
        else:
            pairs.append((None, str(body[j - 1])))
            j -= 1
    return edits, pairs[::-1]


def _voiding_word(pairs: list[tuple[str | None, str | None]]) -> str:
    """A word whose change alters what the evidence says: a number the text does not have
    there, or a negation on one side only."""
    for mine, theirs in pairs:
        if mine == theirs:
            continue
        if mine is not None and any(c.isdigit() for c in mine):
            return f"the number {mine!r}"
        for word in (mine, theirs):
            if word in NEGATIONS:
                return f"{'adds' if word == mine else 'drops'} the negation {word!r}"
    return ""


def _piece(piece: list[str], text: str) -> tuple[int, str]:
    """Words of `piece` the text lacks (all of them when a word voids it), and why voided."""
    found: list[tuple[int, str]] = []
    for joined, body in _bodies(text):
        if f" {' '.join(piece)} " in joined:
            return 0, ""
        if len(body):
            edits, pairs = _align(piece, body)
            # a piece mostly not there is missed as it is; one mostly there may still change a
            # number or a negation
            flaw = _voiding_word(pairs) if 2 * edits <= len(piece) else ""
            found.append((len(piece) if flaw else min(edits, len(piece)), flaw))
    return min(found, key=lambda f: (f[0], bool(f[1])), default=(len(piece), ""))


def _readings(quote: str) -> list[list[list[str]]]:
    """The ways a quote may be read, each as its pieces' words: as written (with editorial
    marks taken out, unless nothing else is left), and, when the judge put passages of it in
    quote marks, those passages alone (the words around them are the judge's own)."""
    plain = _EDITORIAL.sub(" ", quote)
    texts = [plain if words(plain) else quote]
    passages = [a or b for a, b in _PASSAGE.findall(quote)]
    if passages and " ".join(passages).strip() != quote.strip(" \"\u201c\u201d\n"):
        texts.append("\n".join(passages))
    readings = []
    for t in texts:
        pieces = [w for w in map(words, _PIECES.split(t)) if w]
        if pieces:
            readings.append(pieces)
    return readings


def fidelity(quote: str, text: str) -> Fidelity | None:
    """How much of `quote` is `text`'s words, in order, piece by piece (None: no words)."""
    best: Fidelity | None = None
    for pieces in _readings(quote):
        total = sum(len(p) for p in pieces)
        missed, flaw = 0, ""
        for p in pieces:
            n, why = _piece(p, text)
            missed, flaw = missed + n, flaw or why
        found = Fidelity(round(1 - missed / total, 4), flaw)
        if best is None or (found.share, not found.flaw) > (best.share, not best.flaw):
            best = found
    return best

"""Cues a judge can learn instead of quality: what separates chosen from rejected answers besides
being better (RRM, arXiv 2409.13156; Crome; "Reward Models Identify Consistency, Not
Causality"). Each cue is measured per pair as whether the chosen answer has more of it than
the rejected one; across a part of the data, a share far from half is a shortcut a judge can
take.

Length is counted in tokens where the build counted them (the `token_lengths` stage, with the
tokenizer of the model to be trained), else in words (white-space separated), which order two
answers as a tokenizer's counts nearly always do; the report says which.
"""

from __future__ import annotations

import math
import re

# What a cue counts in one answer.
_HEADER = re.compile(r"^\s{0,3}#{1,6}\s+\S", re.M)
_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d{1,3}[.)])\s+\S", re.M)
_BOLD = re.compile(r"\*\*[^*\n]+\*\*|__[^_\n]+__")
_FENCE = re.compile(r"^\s*(?:```|~~~)", re.M)

CUES = ("longer", "more_markdown", "more_code_blocks")


def words(text: str) -> int:
    return len(text.split())


def markdown(text: str) -> int:
    """Markdown structure: headers, list items and bold spans."""
    return len(_HEADER.findall(text)) + len(_LIST_ITEM.findall(text)) + len(_BOLD.findall(text))


def code_blocks(text: str) -> int:
    return len(_FENCE.findall(text)) // 2


# What each cue counts in one answer.
COUNTS = {"longer": words, "more_markdown": markdown, "more_code_blocks": code_blocks}
# How the card and its plot name each cue (and the verdict position, measured beside them).
CUE_NAMES = {"longer": "chosen is longer", "more_markdown": "chosen has more markdown",
             "more_code_blocks": "chosen has more code blocks", "verdict_a": "verdict is A"}


def _sign(a: int, b: int) -> int:
    return (a > b) - (a < b)


def cue_sign(cue: str, chosen: str, rejected: str) -> int:
    """1 when the chosen answer has more of the cue, -1 when the rejected one has, 0 for a tie
    (equal, or neither has any)."""
    return _sign(COUNTS[cue](chosen), COUNTS[cue](rejected))


def pair_cues(chosen: str, rejected: str, lengths: tuple[int, int] | None = None
              ) -> dict[str, int]:
    """`cue_sign` of every cue; `lengths`, the answers' token counts where known, decide which
    one is longer."""
    return {cue: _sign(*lengths) if lengths and cue == "longer" else cue_sign(cue, chosen, rejected)
            for cue in CUES}


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float] | None:
    """The 95% Wilson score interval of a share k/n (sound at small n and near 0 or 1)."""
    if n == 0:
        return None
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4)

"""The verdict of a judgement that sees four answers at once and names the best (RewardBench 2's
published protocol for a generative judge): the same rule as the pairwise verdict
(pipeline/rules/verdict.py), over four letters. Exactly one of `<answer>[[A]]</answer>` ..
`<answer>[[D]]</answer>` must stand in the trace's last 80 characters; anything else is no
verdict, which RewardBench 2 scores as a four-way tie (0.25)."""

from __future__ import annotations

from pipeline.rules.verdict import one_tag

LETTERS = "ABCD"
TAGS = {letter: f"<answer>[[{letter}]]</answer>" for letter in LETTERS}


def best_of_four_verdict(text: str | None) -> str | None:
    """'A' to 'D' when exactly one verdict tag stands in the last 80 characters, else None."""
    return one_tag(text, TAGS)

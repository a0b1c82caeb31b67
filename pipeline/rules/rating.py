"""The rating of a judgement that rates one answer on its own from 1 to 10 (RewardBench 2 with
`--score_w_ratings`, and always for its Ties subset): one `<answer>N</answer>`, N a whole number
from 1 to 10, in the trace's last 80 characters; anything else is no rating, which RewardBench 2
counts as -1 (below every real rating)."""

from __future__ import annotations

import re

from pipeline.rules.verdict import TAIL_CHARS

RATING = re.compile(r"<answer>\s*(10|[1-9])\s*</answer>")
LOWEST, HIGHEST = 1, 10


def rating_of(text: str | None) -> int | None:
    """The rating when exactly one rating tag stands in the last 80 characters, else None."""
    if not text:
        return None
    found = RATING.findall(text[-TAIL_CHARS:])
    return int(found[0]) if len(found) == 1 else None

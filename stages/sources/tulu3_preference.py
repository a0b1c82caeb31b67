"""allenai/llama-3.1-tulu-3-8b-preference-mixture: Tulu 3's DPO mix, one pair per row, each
answer a whole conversation (the prompt's turns, then the answer); `prompt` repeats the
request and `id` names the row in its origin set (both kept in `raw` only)."""

from __future__ import annotations

from typing import Any

import datasets

from stages.sources.base import Pair, Source, last_turns, text

_MESSAGES = [{"content": datasets.Value("string"), "role": datasets.Value("string")}]


class Tulu3Preference(Source):
    name = "tulu3_preference"
    features = datasets.Features({
        "id": datasets.Value("string"), "prompt": datasets.Value("string"),
        "chosen": _MESSAGES, "rejected": _MESSAGES, "source": datasets.Value("string"),
    })

    def to_pair(self, row: dict[str, Any]) -> Pair:
        prompt, chosen, rejected = last_turns(row)
        # the origin set (e.g. allenai/tulu-3-sft-reused-on-policy-8b): lineage, and a way to
        # leave one out with exclude_subsets
        return Pair(prompt=prompt, chosen=chosen, rejected=rejected,
                    subset=text(row, "source"), domain="chat")

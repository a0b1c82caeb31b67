"""Skywork-Reward-Preference-80K-v0.2: full conversations whose last turn is the answer."""

from __future__ import annotations

from typing import Any

import datasets

from stages.sources.base import Pair, Source, last_turns, text

_MESSAGES = [{"role": datasets.Value("string"), "content": datasets.Value("string")}]


class Skywork(Source):
    name = "skywork"
    features = datasets.Features(
        {"chosen": _MESSAGES, "rejected": _MESSAGES, "source": datasets.Value("string")}
    )

    def to_pair(self, row: dict[str, Any]) -> Pair:
        prompt, chosen, rejected = last_turns(row)
        subset = text(row, "source")
        return Pair(prompt=prompt, chosen=chosen, rejected=rejected,
                    subset=subset, domain="safety" if subset == "wildguard" else "chat")

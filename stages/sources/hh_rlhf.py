"""Anthropic/hh-rlhf: whole conversations written as one text ("\\n\\nHuman: ...\\n\\nAssistant:
..."), chosen and rejected each ending with the answer. Its parts are folders of the Hub
repository (`harmless-base`, `helpful-base`, ...): pick one with `sources.hh_rlhf.data_dir`."""

from __future__ import annotations

from typing import Any

import datasets

from stages.sources.base import Pair, Source, last_turns, text, transcript


class HhRlhf(Source):
    name = "hh_rlhf"
    features = datasets.Features({"chosen": datasets.Value("string"),
                                  "rejected": datasets.Value("string")})

    def to_pair(self, row: dict[str, Any]) -> Pair:
        # a "Human:" inside a turn leaves who said what unknown: quarantined (inline_marker)
        turns = {side: transcript(text(row, side)).strict() for side in ("chosen", "rejected")}
        prompt, chosen, rejected = last_turns(turns)
        return Pair(prompt=prompt, chosen=chosen, rejected=rejected, subset="hh-rlhf",
                    domain="chat")

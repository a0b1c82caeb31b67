"""openbmb/UltraFeedback: one instruction with up to four completions, each scored by GPT-4.

One row holds several pairs: every two completions whose `overall_score`s differ by at least
the margin make a pair, the higher-scored one chosen. Closer scores are ties, rejected with
their scores, so the manifest shows what the margin costs.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import Any

import datasets

from stages.sources.base import BadRow, Excluded, Pair, Source, text

_S = datasets.Value("string")
_RATED = {"Rating": _S, "Rationale": _S}
_TYPED = {"Type": [_S], "Rationale": _S, "Rating": _S, "Rationale For Rating": _S}
_COMPLETION = {
    "annotations": {"helpfulness": _TYPED, "honesty": _RATED,
                    "instruction_following": _RATED, "truthfulness": _TYPED},
    "critique": _S, "custom_system_prompt": _S,
    "fine-grained_score": datasets.Value("float64"), "model": _S,
    "overall_score": datasets.Value("float64"), "principle": _S, "response": _S,
}


@dataclass(frozen=True)
class UltraFeedbackParams:
    # Completions whose overall_score differ by less than this are a tie, not a pair (scores
    # run from 1 to 10; HuggingFaceH4's binarized set keeps any difference, i.e. > 0).
    margin: float = 1.0

    def check(self) -> str | None:
        return None if self.margin > 0 else "margin must be > 0 (equal scores are no preference)"


class UltraFeedback(Source):
    name = "ultrafeedback"
    features = datasets.Features({
        "source": _S, "instruction": _S, "models": [_S], "completions": [_COMPLETION],
        "correct_answers": [_S], "incorrect_answers": [_S],
    })
    Params = UltraFeedbackParams

    def to_pairs(self, row: dict[str, Any]) -> list[Pair | Excluded | BadRow]:
        prompt = [{"role": "user", "content": text(row, "instruction")}]
        subset = text(row, "source")
        completions = row.get("completions")
        if completions is None:
            raise BadRow("missing_field", "completions")
        if len(completions) < 2:
            raise Excluded("too_few_completions",
                           f"{len(completions)} completion(s): nothing to compare")
        items: list[Pair | Excluded | BadRow] = []
        # completion i vs j for i < j, in the row's order: a pair's index depends on the row alone
        for i, j in combinations(range(len(completions)), 2):
            items.append(self._pair(prompt, subset, completions, i, j))
        return items

    def _pair(self, prompt: list[dict[str, str]], subset: str, completions: list[dict[str, Any]],
              i: int, j: int) -> Pair | Excluded | BadRow:
        scored = []
        for k in (i, j):
            c = completions[k]
            if c.get("response") is None or c.get("overall_score") is None:
                missing = "response" if c.get("response") is None else "overall_score"
                return BadRow("missing_field", f"completions[{k}].{missing}")
            scored.append((c["overall_score"], k, c["response"]))
        (si, _, ri), (sj, _, rj) = scored
        if abs(si - sj) < self.params.margin:
            return Excluded("tie", f"completions {i} and {j}: overall_score {si:g} vs {sj:g}, "
                                   f"less than the margin {self.params.margin:g} apart")
        better, worse = (ri, rj) if si > sj else (rj, ri)
        return Pair(prompt=prompt, chosen=[{"role": "assistant", "content": better}],
                    rejected=[{"role": "assistant", "content": worse}],
                    subset=subset, domain="chat")

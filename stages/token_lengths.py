"""Count each row's tokens as the trainer will see them, and drop rows that will not fit.

SFT rows count the whole chat (judge prompt plus trace) with the chat template applied; RL rows
count the prompt with the generation prompt added. Trainers truncate or fail on longer rows,
so a row over its cap is rejected as `over_token_limit` (RM-R1: SFT 12,288; RL prompt 4,096).
The tokenizer is named in config: a Hub id or a local path, the policy you will train.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from pipeline.schema import REJECTED, SFT
from pipeline.stage import Resources, Stage, decide, map_rows
from pipeline.tokenizers import chats_tokens, load_tokenizer, local_model_dir


@dataclass(frozen=True)
class TokenLengthsParams:
    # A Hub id or a local directory with the tokenizer of the model you will train; null: the
    # local teacher's (SmolLM2), which needs no network but counts differently than yours.
    tokenizer: str | None = None
    # Caps; null: count only.
    max_sft_tokens: int | None = 12288
    max_rl_prompt_tokens: int | None = 4096

    def check(self) -> str | None:
        for name in ("max_sft_tokens", "max_rl_prompt_tokens"):
            value = getattr(self, name)
            if value is not None and value < 1:
                return f"{name} must be >= 1 or null"
        return None


class TokenLengths(Stage):
    name = "token_lengths"
    inputs = ("split", "context_messages", "trace")
    outputs = ("num_tokens", "outcome", "reason", "detail", "decided_by")
    Params = TokenLengthsParams

    def resources(self) -> Resources:
        # tokenizers loaded once per actor; two, so a 2-core machine counts on both cores
        return Resources(num_cpus=1, actors=2)

    def preflight(self) -> None:
        self._tokenizer()  # a tokenizer that cannot be loaded stops the build before any work
        self._tok = None  # the workers load their own

    def _tokenizer(self) -> Any:
        if getattr(self, "_tok", None) is None:
            name = self.params.tokenizer or local_model_dir(self.ctx.cfg.teacher.model_dir)
            self._tok = load_tokenizer(name, "recipe.stages.token_lengths.tokenizer")
        return self._tok

    @staticmethod
    def chat(row: dict[str, Any]) -> tuple[list[dict[str, str]], bool]:
        """What the trainer reads, and whether a generation prompt follows it."""
        if row["split"] == SFT:
            return [*row["context_messages"], {"role": "assistant", "content": row["trace"]}], False
        return row["context_messages"], True

    def process(self, rows: pa.Table) -> pa.Table:
        chats = [self.chat(r) for r in rows.select(["split", "context_messages", "trace"]).to_pylist()]
        counts = iter(chats_tokens(self._tokenizer(), [c for c, _ in chats], [g for _, g in chats]))

        def one(row: dict[str, Any]) -> dict[str, Any]:
            n = next(counts)
            sft = row["split"] == SFT
            cap = self.params.max_sft_tokens if sft else self.params.max_rl_prompt_tokens
            if cap is not None and n > cap:
                what = "SFT chat" if sft else "RL prompt"
                return {"num_tokens": n} | decide(REJECTED, "over_token_limit", self.name,
                                                  f"{what}: {n} tokens > {cap}")
            return {"num_tokens": n}

        return map_rows(rows, one, self.outputs)

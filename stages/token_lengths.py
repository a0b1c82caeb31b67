"""Count each row's tokens as the trainer will see them, and drop rows that will not fit.

SFT rows count the whole chat (judge prompt plus trace) with the chat template applied; RL rows
count the prompt with the generation prompt added. Trainers truncate or fail on longer rows,
so a row over its cap is rejected as `over_token_limit` (RM-R1: SFT 12,288; RL prompt 4,096).
The tokenizer is named in config: a Hub id or a local path, the policy you will train.
It also counts the chosen and the rejected answer alone, so the card's length cue (which answer
is longer) is measured in the units the trained model reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from pipeline.engine.schema import REJECTED, SFT
from pipeline.engine.stage import Resources, Stage, decide, map_rows
from pipeline.teachers.tokenizers import (
    CountCache,
    chats_tokens,
    load_tokenizer,
    local_model_dir,
    named_tokenizer_digest,
    texts_tokens,
    tokenizer_digest,
)

SETTING = "recipe.stages.token_lengths.tokenizer"


@dataclass(frozen=True)
class TokenLengthsParams:
    # A Hub id or a local directory with the tokenizer of the model you will train; null: the
    # local teacher's (SmolLM2), which needs no network but counts differently than yours.
    tokenizer: str | None = None
    # Caps; null: count only.
    max_sft_tokens: int | None = 12288
    max_rl_prompt_tokens: int | None = 4096
    # Token counts of chats counted before are read from here (this machine's disk), so a
    # rebuild does not load the tokenizer or encode any row again; null: always count.
    cache_dir: str | None = "~/.cache/rubricforge/token_counts"

    def check(self) -> str | None:
        for name in ("max_sft_tokens", "max_rl_prompt_tokens"):
            value = getattr(self, name)
            if value is not None and value < 1:
                return f"{name} must be >= 1 or null"
        return None


class TokenLengths(Stage):
    name = "token_lengths"
    inputs = ("split", "context_messages", "trace", "chosen", "rejected")
    # a swapped trace kept as a second SFT row (swap_consistency) must fit too
    optional_inputs = ("swap_messages",)
    outputs = ("num_tokens", "swap_num_tokens", "chosen_tokens", "rejected_tokens", "outcome",
               "reason", "detail", "decided_by")
    columns = {
        # tokens of what the trainer sees (SFT: prompt + trace; RL: prompt), and of the chat
        # with A and B swapped (swap_consistency)
        "num_tokens": pa.int64(), "swap_num_tokens": pa.int64(),
        # tokens of the chosen and the rejected answer alone (the length cue)
        "chosen_tokens": pa.int64(), "rejected_tokens": pa.int64()}
    Params = TokenLengthsParams

    def resources(self) -> Resources:
        # tokenizers loaded once per actor; two, so a 2-core machine counts on both cores
        return Resources(num_cpus=1, actors=2)

    def preflight(self) -> None:
        # a tokenizer that cannot be loaded stops the build before any work (its digest, which
        # names the count cache, is computed by loading it, or read back for the same files);
        # the workers load their own, and only for chats whose counts are not in the cache
        self._digest = named_tokenizer_digest(self._name(), SETTING, self.params.cache_dir)

    def _name(self) -> str:
        return self.params.tokenizer or local_model_dir(self.ctx.cfg.teacher.model_dir)

    def _tokenizer(self) -> Any:
        return load_tokenizer(self._name(), SETTING)  # (once per process)

    def _cache(self) -> CountCache | None:
        if not self.params.cache_dir:
            return None
        if getattr(self, "_counts", None) is None:
            digest = getattr(self, "_digest", None) or tokenizer_digest(self._tokenizer())
            self._counts = CountCache(self.params.cache_dir, digest)
        return self._counts

    @staticmethod
    def chat(row: dict[str, Any]) -> tuple[list[dict[str, str]], bool]:
        """What the trainer reads, and whether a generation prompt follows it."""
        if row["split"] == SFT:
            return [*row["context_messages"], {"role": "assistant", "content": row["trace"]}], False
        return row["context_messages"], True

    def ahead(self, rows: pa.Table) -> None:
        """While the teachers answer: count what does not depend on them (RL prompts, the
        answers alone) into the count cache, which `process` then reads."""
        if not self.params.cache_dir:
            return
        records = rows.select(["split", "context_messages"]).to_pylist()
        prompts = [r["context_messages"] for r in records if r["split"] != SFT]
        chats_tokens(self._tokenizer, prompts, [True] * len(prompts), self._cache())
        texts_tokens(self._tokenizer, self.answers(rows), self._cache())

    @staticmethod
    def answers(rows: pa.Table) -> list[str]:
        """Every chosen answer, then every rejected one (the length cue's texts)."""
        return [m[0]["content"] if m else "" for side in ("chosen", "rejected")
                for m in rows.column(side).to_pylist()]

    def process(self, rows: pa.Table) -> pa.Table:
        records = rows.select([c for c in ("split", "context_messages", "trace", "swap_messages")
                               if c in rows.column_names]).to_pylist()
        chats = [self.chat(r) for r in records]
        swapped = [i for i, r in enumerate(records) if r["split"] == SFT and r.get("swap_messages")]
        chats += [(records[i]["swap_messages"], False) for i in swapped]
        counts = chats_tokens(self._tokenizer, [c for c, _ in chats], [g for _, g in chats],
                              self._cache())
        swap_counts = dict(zip(swapped, counts[len(records):], strict=True))
        answer_counts = texts_tokens(self._tokenizer, self.answers(rows), self._cache())
        index = iter(range(len(records)))

        def one(row: dict[str, Any]) -> dict[str, Any]:
            i = next(index)
            n, n_swap = counts[i], swap_counts.get(i)
            sft = row["split"] == SFT
            cap = self.params.max_sft_tokens if sft else self.params.max_rl_prompt_tokens
            update = {"num_tokens": n, "swap_num_tokens": n_swap, "chosen_tokens": answer_counts[i],
                      "rejected_tokens": answer_counts[len(records) + i]}
            over = [(what, k) for what, k in (("SFT chat" if sft else "RL prompt", n),
                                              ("SFT chat with A/B swapped", n_swap))
                    if cap is not None and k is not None and k > cap]
            if over:
                what, k = over[0]
                return update | decide(REJECTED, "over_token_limit", self.name,
                                       f"{what}: {k} tokens > {cap}")
            return update

        return map_rows(rows, one, self.outputs)

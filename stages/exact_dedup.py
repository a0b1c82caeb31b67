"""Remove exact duplicates across all sources, on normalized text, before anything is split.

Each row's normalized key is hashed in parallel batches; the driver gets only (id, digest,
keep rank, pair_id) per row, some 100 bytes, never the texts, and keeps for each digest the
row that sorts first under the keep rule. The others are marked `deduplicated` in parallel,
with `dup_of` naming the row kept. No row moves through a shuffle.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import partial
from typing import Any

import pyarrow as pa
import ray

from pipeline.duplicates import Duplicates, mark_duplicates
from pipeline.keys import keep_rank, row_id, row_text
from pipeline.stage import Stage

KEYS = ("prompt", "pair")


@dataclass(frozen=True)
class ExactDedupParams:
    # What must be identical: the prompt alone (so no prompt lands in both SFT and RL),
    # or the whole pair.
    key: str = "prompt"

    def check(self) -> str | None:
        return None if self.key in KEYS else f"key must be one of {', '.join(KEYS)}"


KEYED = pa.schema([("id", pa.string()), ("digest", pa.string()), ("keep", pa.string()),
                   ("pair_id", pa.string())])


def _keyed(batch: pa.Table, key: str, priority: list[str]) -> pa.Table:
    rows = batch.to_pylist()
    return pa.table({"id": [row_id(r) for r in rows],
                     "digest": [hashlib.sha256(row_text(r, key).encode()).hexdigest() for r in rows],
                     "keep": [keep_rank(r, priority) for r in rows],
                     "pair_id": [r["pair_id"] for r in rows]}, schema=KEYED)


def resolve(keyed: pa.Table, key: str) -> Duplicates:
    """For each digest, the row that sorts first is kept; the others are its duplicates."""
    first: dict[str, tuple[str, str, str]] = {}
    rows = zip(*(keyed.column(c).to_pylist() for c in ("keep", "digest", "id", "pair_id")),
               strict=True)
    dups: Duplicates = {}
    for keep, digest, rid, pid in sorted(rows):
        kept = first.setdefault(digest, (keep, rid, pid))
        if kept[0] != keep:
            dups[rid] = (kept[2], "exact_dup", f"same normalized {key} as {kept[1]}")
    return dups


class ExactDedup(Stage):
    name = "exact_dedup"
    inputs = ("pair_id", "source", "source_index", "prompt", "chosen", "rejected")
    outputs = ("outcome", "reason", "detail", "decided_by", "dup_of")
    whole_dataset = True
    Params = ExactDedupParams

    def process_dataset(self, live: Any) -> Any:
        priority = list(self.ctx.cfg.recipe.source_priority)
        keyed = live.map_batches(partial(_keyed, key=self.params.key, priority=priority),
                                 batch_format="pyarrow", batch_size=4096,
                                 **self.configured_resources().ray_args())
        parts = [t for t in ray.get(keyed.to_arrow_refs()) if t.num_rows]
        dups = resolve(pa.concat_tables(parts), self.params.key) if parts else {}
        if not dups:
            return live
        return live.map_batches(partial(mark_duplicates, dups=dups, stage=self.name),
                                batch_format="pyarrow")

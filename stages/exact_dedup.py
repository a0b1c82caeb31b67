"""Remove exact duplicates across all sources, on normalized text, before anything is split.

Rows are hashed into buckets, Ray shuffles each bucket to one task, and within a bucket rows
with the same key are resolved: the row that sorts first under the keep rule stays, the others
are marked `deduplicated` with `dup_of` naming it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import partial
from typing import Any

import pyarrow as pa

from pipeline.keys import keep_rank, row_id, row_text
from pipeline.ray_session import shuffle_partitions
from pipeline.schema import DEDUPLICATED
from pipeline.stage import Stage, decide, map_rows

KEYS = ("prompt", "pair")


@dataclass(frozen=True)
class ExactDedupParams:
    # What must be identical: the prompt alone (so no prompt lands in both SFT and RL),
    # or the whole pair.
    key: str = "prompt"

    def check(self) -> str | None:
        return None if self.key in KEYS else f"key must be one of {', '.join(KEYS)}"


def _keyed(batch: pa.Table, key: str, priority: list[str]) -> pa.Table:
    rows = batch.to_pylist()
    digests = [hashlib.sha256(row_text(r, key).encode()).hexdigest() for r in rows]
    return (batch.append_column("__key", pa.array(digests, pa.string()))
            .append_column("__bucket", pa.array([d[:3] for d in digests], pa.string()))
            .append_column("__keep", pa.array([keep_rank(r, priority) for r in rows], pa.string())))


def _resolve(bucket: pa.Table, stage: str, key: str) -> pa.Table:
    first: dict[str, dict[str, Any]] = {}
    for r in sorted(bucket.to_pylist(), key=lambda r: r["__keep"]):
        first.setdefault(r["__key"], r)

    def one(r: dict[str, Any]) -> dict[str, Any]:
        kept = first[r["__key"]]
        if kept["__keep"] == r["__keep"]:
            return {}
        detail = f"same normalized {key} as {row_id(kept)}"
        return decide(DEDUPLICATED, "exact_dup", stage, detail) | {"dup_of": kept["pair_id"]}

    return map_rows(bucket, one)


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
        return keyed.groupby("__bucket", num_partitions=shuffle_partitions()).map_groups(
            partial(_resolve, stage=self.name, key=self.params.key), batch_format="pyarrow")

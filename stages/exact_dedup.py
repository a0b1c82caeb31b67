"""Remove exact duplicates across all sources, on normalized text, before anything is split,
and name each row's prompt group: the rows whose prompts are the same.

Each row's normalized keys are hashed in parallel batches; the driver gets only (id, digests,
keep rank, pair_id) per row, some 150 bytes, never the texts. For each digest of the compared
key the row that sorts first under the keep rule is kept; the others are marked `deduplicated`
in parallel, with `dup_of` naming the row kept. The rows left that share a prompt form one
group, named by its first row's pair_id; the split keeps a group on one side. No row moves
through a shuffle.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import partial
from typing import Any

import pyarrow as pa
import ray

from pipeline.engine.duplicates import Duplicates, mark_duplicates
from pipeline.engine.stage import Stage
from pipeline.rules.keys import (
    compared_columns,
    keep_rank,
    prompt_and_pair_text,
    row_id,
    row_text,
)

KEYS = ("prompt", "pair")


@dataclass(frozen=True)
class ExactDedupParams:
    # What must be identical for a row to go: the whole pair (every distinct pair is kept;
    # pairs sharing a prompt stay together through the split), or the prompt alone (one pair
    # per prompt, the rest removed).
    key: str = "pair"

    def check(self) -> str | None:
        return None if self.key in KEYS else f"key must be one of {', '.join(KEYS)}"


KEYED = pa.schema([("id", pa.string()), ("digest", pa.string()), ("prompt", pa.string()),
                   ("keep", pa.string()), ("pair_id", pa.string())])


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _keyed(batch: pa.Table, key: str, priority: list[str]) -> pa.Table:
    rows = batch.select(list(compared_columns(key))).to_pylist()
    if key == "prompt":
        prompts = digests = [_digest(row_text(r, "prompt")) for r in rows]
    else:
        texts = [prompt_and_pair_text(r) for r in rows]
        prompts, digests = [_digest(p) for p, _ in texts], [_digest(t) for _, t in texts]
    return pa.table({"id": [row_id(r) for r in rows],
                     "digest": digests,
                     "prompt": prompts,
                     "keep": [keep_rank(r, priority) for r in rows],
                     "pair_id": [r["pair_id"] for r in rows]}, schema=KEYED)


def resolve(keyed: pa.Table, key: str) -> tuple[Duplicates, dict[str, str]]:
    """For each digest, the row that sorts first is kept; the others are its duplicates. Rows
    kept that share a prompt digest are one group, named by the first one's pair_id: the
    second result maps each other row's pair_id to it."""
    first: dict[str, tuple[str, str, str]] = {}
    leader: dict[str, str] = {}
    rows = zip(*(keyed.column(c).to_pylist() for c in ("keep", "digest", "id", "pair_id",
                                                       "prompt")), strict=True)
    dups: Duplicates = {}
    groups: dict[str, str] = {}
    for keep, digest, rid, pid, prompt in sorted(rows):
        kept = first.setdefault(digest, (keep, rid, pid))
        if kept[0] != keep:
            dups[rid] = (kept[2], "exact_dup", f"same normalized {key} as {kept[1]}")
            continue
        group = leader.setdefault(prompt, pid)
        if group != pid:
            groups[pid] = group
    return dups, groups


class ExactDedup(Stage):
    name = "exact_dedup"
    inputs = ("pair_id", "source", "source_index", "pair_index", "prompt", "chosen", "rejected")
    outputs = ("outcome", "reason", "detail", "decided_by", "dup_of", "prompt_group")
    whole_dataset = True
    Params = ExactDedupParams

    def process_dataset(self, live: Any) -> Any:
        priority = list(self.ctx.cfg.recipe.source_priority)
        keyed = live.map_batches(partial(_keyed, key=self.params.key, priority=priority),
                                 batch_format="pyarrow", batch_size=4096,
                                 **self.configured_resources().ray_args())
        parts = [t for t in ray.get(keyed.to_arrow_refs()) if t.num_rows]
        dups, groups = resolve(pa.concat_tables(parts), self.params.key) if parts else ({}, {})
        self._summary = group_summary(groups)
        return live.map_batches(partial(mark_duplicates, dups=ray.put(dups),
                                        regroup=ray.put(groups), stage=self.name),
                                batch_format="pyarrow")

    def summary(self) -> dict[str, Any]:
        return getattr(self, "_summary", {})


def group_summary(regroup: dict[str, str]) -> dict[str, int]:
    """How many prompt groups hold several pairs, and how many pairs they hold, from the map of
    each joined group (or pair) to the group it joined."""
    sizes: dict[str, int] = {}
    for target in regroup.values():
        sizes[target] = sizes.get(target, 1) + 1
    return {"prompt_groups_of_several_pairs": len(sizes), "pairs_in_them": sum(sizes.values())}

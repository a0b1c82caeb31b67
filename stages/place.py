"""Decide which answer is shown as Chatbot A: seeded, and balanced 50/50 within each source
and split (counts differ by at most one), so position carries no information."""

from __future__ import annotations

import pyarrow as pa

from pipeline.engine.stage import Stage
from pipeline.rules.keys import seeded_order


class Place(Stage):
    name = "place"
    inputs = ("pair_id", "source", "source_index", "split")
    outputs = ("winner",)
    group_by = ("source", "split")

    def process(self, rows: pa.Table) -> pa.Table:
        ids = rows.column("pair_id").to_pylist()
        idx = rows.column("source_index").to_pylist()
        order = seeded_order(self.ctx.cfg.seed, self.name, ids, idx)
        winner = [""] * len(ids)
        for rank, i in enumerate(order):
            winner[i] = "model_a" if rank % 2 == 0 else "model_b"
        return rows.append_column("winner", pa.array(winner, pa.string()))

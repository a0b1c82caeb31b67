"""Send a seeded, per-source stratified fraction of the pairs to distillation, the rest to RL."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from pipeline.keys import seeded_order
from pipeline.schema import RL, SFT
from pipeline.stage import Stage


@dataclass(frozen=True)
class SplitParams:
    # Share of each source's pairs that the teacher judges (RM-R1: 0.12).
    distill_fraction: float = 0.12

    def check(self) -> str | None:
        ok = 0.0 <= self.distill_fraction <= 1.0
        return None if ok else "distill_fraction must be between 0 and 1"


class Split(Stage):
    name = "split"
    inputs = ("pair_id", "source", "source_index")
    outputs = ("split",)
    group_by = ("source",)
    Params = SplitParams

    def process(self, rows: pa.Table) -> pa.Table:
        ids = rows.column("pair_id").to_pylist()
        idx = rows.column("source_index").to_pylist()
        order = seeded_order(self.ctx.cfg.seed, self.name, ids, idx)
        n_sft = round(self.params.distill_fraction * len(ids))
        split = [RL] * len(ids)
        for i in order[:n_sft]:
            split[i] = SFT
        return rows.append_column("split", pa.array(split, pa.string()))

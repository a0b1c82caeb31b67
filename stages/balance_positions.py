"""Optional: as many kept SFT traces say A as say B, per source.

The labels are placed 50/50, but the filter keeps only traces whose verdict is right, so a
teacher that prefers one position leaves an SFT set that leans that way, and a judge trained on
it learns the lean. This stage rejects, per source, a seeded choice of the majority side's
surplus as `position_balance`, so the kept verdicts are equal (2 x the minority side remain).
A pair kept in both orders (swap_consistency's `keep_both`: one trace says A, the other B) is
balanced already and never cut, so with the swap check only single-order pairs pay for balance.
RL prompts are placed 50/50 already and are left alone. Add it after the teacher stages and
token_lengths (a row they reject after the cut would tip the balance again):
`recipe.stages.balance_positions={}` (the recipes list it, off).
"""

from __future__ import annotations

import pyarrow as pa

from pipeline.engine.schema import REJECTED, SFT
from pipeline.engine.stage import Stage, decide, with_fates
from pipeline.rules.keys import seeded_order

LABEL = {"model_a": "A", "model_b": "B"}


class BalancePositions(Stage):
    name = "balance_positions"
    inputs = ("pair_id", "source", "source_index", "split", "winner")
    optional_inputs = ("swap_messages",)
    outputs = ("outcome", "reason", "detail", "decided_by")
    group_by = ("source", "split")

    def process(self, rows: pa.Table) -> pa.Table:
        n = rows.num_rows
        decided = {}
        if rows.column("split")[0].as_py() == SFT:
            winners = rows.column("winner").to_pylist()
            ids = rows.column("pair_id").to_pylist()
            idx = rows.column("source_index").to_pylist()
            both = (rows.column("swap_messages").is_valid().to_pylist()
                    if "swap_messages" in rows.column_names else [False] * n)
            sides = {w: [i for i in range(n) if winners[i] == w and not both[i]] for w in LABEL}
            major, minor = sorted(LABEL, key=lambda w: (-len(sides[w]), w))
            keep = len(sides[minor])
            order = seeded_order(self.ctx.cfg.seed, self.name, ids, idx, sides[major])
            why = (f"{len(sides[major])} kept traces say {LABEL[major]}, "
                   f"{keep} say {LABEL[minor]}: {LABEL[major]} cut to {keep}")
            decided = {i: decide(REJECTED, "position_balance", self.name, why)
                       for i in order[keep:]}
        return with_fates(rows, decided)

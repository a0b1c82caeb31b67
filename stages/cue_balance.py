"""Optional: a chosen-answer cue (length, markdown, code blocks) brought within a tolerance of
half, per source and part, by a seeded, accounted-for cut.

A judge learns whatever tells chosen from rejected; when the chosen answer is the longer one in
80% of the pairs, length is a shortcut (RRM, arXiv 2409.13156). Among the pairs whose answers
differ in the cue (pipeline/rules/cues.py), this stage rejects a seeded choice of the majority
side's surplus as `cue_balance` (the detail names the cue and the counts), until the chosen
answer has more of it in at most 50% + `tolerance` of them. Pairs that do not differ are never
cut. It runs after the split and before the teacher, so a cut pair costs no teacher call:
`recipe.stages.cue_balance={cue: longer, tolerance: 0.05}` (the recipes list it, off). What it
costs in rows is in the manifest (`removed` of the stage) and on the card.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pyarrow as pa

from pipeline.engine.schema import REJECTED
from pipeline.engine.stage import Stage, decide, with_fates
from pipeline.rules.cues import CUES, cue_sign
from pipeline.rules.keys import seeded_order


@dataclass(frozen=True)
class CueBalanceParams:
    cue: str = "longer"
    # the chosen answer may have more of the cue in at most 0.5 + tolerance of the pairs that
    # differ in it (and in at least 0.5 - tolerance)
    tolerance: float = 0.05

    def check(self) -> str | None:
        if self.cue not in CUES:
            return f"cue must be one of {', '.join(CUES)}"
        return None if 0.0 <= self.tolerance < 0.5 else "tolerance must be in [0, 0.5)"


class CueBalance(Stage):
    name = "cue_balance"
    inputs = ("pair_id", "source", "source_index", "split", "chosen", "rejected")
    outputs = ("outcome", "reason", "detail", "decided_by")
    group_by = ("source", "split")
    Params = CueBalanceParams

    def process(self, rows: pa.Table) -> pa.Table:
        n, p = rows.num_rows, self.params
        chosen, rejected = rows.column("chosen").to_pylist(), rows.column("rejected").to_pylist()
        signs = [cue_sign(p.cue, c[0]["content"], r[0]["content"]) for c, r in
                 zip(chosen, rejected, strict=True)]
        more = [i for i in range(n) if signs[i] > 0]
        less = [i for i in range(n) if signs[i] < 0]
        major, minor = (more, less) if len(more) >= len(less) else (less, more)
        # the most of the majority side that keeps its share within 0.5 + tolerance
        cap = math.floor(len(minor) * (0.5 + p.tolerance) / (0.5 - p.tolerance) + 1e-9)
        decided = {}
        if len(major) > cap:
            ids = rows.column("pair_id").to_pylist()
            idx = rows.column("source_index").to_pylist()
            order = seeded_order(self.ctx.cfg.seed, f"{self.name}:{p.cue}", ids, idx, major)
            side = "more" if major is more else "less"
            why = (f"{p.cue}: the chosen answer has {side} in {len(major)} pairs, the other way "
                   f"in {len(minor)}; cut to {cap} (tolerance {p.tolerance})")
            decided = {i: decide(REJECTED, "cue_balance", self.name, why) for i in order[cap:]}
        return with_fates(rows, decided)

"""Send a seeded, per-source stratified fraction of the pairs to distillation, the rest to RL,
keeping every pair of one prompt on the same side.

The unit of the split is a prompt group (pairs whose prompts the dedup stages found the same,
exactly or nearly; `prompt_group`), not a pair: several answers to one prompt, from a
multi-pair source or from two sources, never put that prompt in both SFT and RL. Each group
counts toward its home source (the source of its first row), so the fraction holds per source;
a group that would overshoot its source's share is passed over for a smaller one.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import pyarrow as pa

from pipeline.engine.schema import RL, SFT
from pipeline.engine.stage import Stage
from pipeline.rules.keys import rank_key


@dataclass(frozen=True)
class SplitParams:
    # Share of each source's pairs that the teacher judges (RM-R1: 0.12).
    distill_fraction: float = 0.12

    def check(self) -> str | None:
        ok = 0.0 <= self.distill_fraction <= 1.0
        return None if ok else "distill_fraction must be between 0 and 1"


class Split(Stage):
    name = "split"
    inputs = ("pair_id", "source", "source_index", "pair_index", "prompt_group")
    outputs = ("split",)
    group_by = ()  # all live rows at once: a prompt group may span sources
    Params = SplitParams

    def process(self, rows: pa.Table) -> pa.Table:
        ids, sources, idx, pair_idx, groups = (rows.column(c).to_pylist() for c in self.inputs)
        units: dict[str, list[int]] = {}
        for i, (pid, group) in enumerate(zip(ids, groups, strict=True)):
            units.setdefault(group or pid, []).append(i)
        first = {u: min(members, key=lambda i: (sources[i], idx[i], pair_idx[i] or 0))
                 for u, members in units.items()}
        size = Counter(sources)
        target = {s: round(self.params.distill_fraction * n) for s, n in size.items()}
        taken = dict.fromkeys(size, 0)
        seed = self.ctx.cfg.seed
        order = sorted(units, key=lambda u: rank_key(seed, self.name, u, idx[first[u]]))
        split = [RL] * len(ids)
        for u in order:
            home = sources[first[u]]
            own = sum(sources[i] == home for i in units[u])
            if taken[home] + own > target[home]:
                continue
            for i in units[u]:
                split[i] = SFT
                taken[sources[i]] += 1
        return rows.append_column("split", pa.array(split, pa.string()))

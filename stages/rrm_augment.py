"""Optional: RRM-style augmentation (arXiv 2409.13156), pairs whose rejected answer is a good
answer to another prompt.

A judge trained only on pairs of answers to the same prompt can score an answer's look (its
length, its format) instead of whether it answers the prompt. An added pair keeps a pair's
prompt and chosen answer and takes, as its rejected answer, the chosen answer of another pair
of the same source and part whose prompt is a different one (another prompt group): an answer
that is good, only not to this prompt. The seeded share `fraction` of each source's pairs in
each part listed in `parts` gives one added pair each.

Added pairs are rows of a new source, `<source>+rrm`, keyed by the pair they came from: their
`source_index` and `pair_index` are its own, so the shards lead back to the raw row, and `raw`
names both pairs. The manifest counts them as that source's input (`added_rows`), so it still
adds up: inputs plus what was added. They stay in their origin's part (its prompt is there) and
go through every later stage; an added sft pair costs a teacher call.
`recipe.stages.rrm_augment={fraction: 0.1}` (the recipes list it, off).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import pyarrow as pa
import ray

from pipeline.engine.schema import RL, ROW_KEY, SFT, put_column
from pipeline.engine.stage import Stage
from pipeline.rules.keys import pair_id, row_name, seeded_order

SUFFIX = "+rrm"
LIGHT = ("pair_id", *ROW_KEY, "split", "prompt_group")


@dataclass(frozen=True)
class RRMAugmentParams:
    # share of each source's pairs, per part, that give one added pair
    fraction: float = 0.1
    parts: list[str] = field(default_factory=lambda: [SFT, RL])

    def check(self) -> str | None:
        if not 0.0 < self.fraction <= 1.0:
            return "fraction must be in (0, 1]"
        wrong = [p for p in self.parts if p not in (SFT, RL)]
        return f"parts: {wrong} are not parts; use sft and/or rl" if wrong else None


class RRMAugment(Stage):
    name = "rrm_augment"
    inputs = (*LIGHT, "prompt", "chosen", "rejected")
    outputs = ("source", "pair_id", "rejected", "raw")
    whole_dataset = True
    adds_rows = True
    Params = RRMAugmentParams

    def __init__(self, params: Any, ctx: Any) -> None:
        super().__init__(params, ctx)
        self.added_keys: dict[str, list[tuple[int, int]]] = {}

    def choose(self, light: pa.Table) -> list[tuple[tuple, tuple]]:
        """(origin key, donor key) of each added pair: per source and part, the first
        `fraction` of the pairs in seeded order, each given the chosen answer of the next pair
        in that order whose prompt group differs (none in a part of one prompt: no pair)."""
        cols = {c: light.column(c).to_pylist() for c in LIGHT}
        groups: dict[tuple[str, str], list[int]] = {}
        for i, (source, part) in enumerate(zip(cols["source"], cols["split"], strict=True)):
            if part in self.params.parts:
                groups.setdefault((source, part), []).append(i)
        chosen = []
        for (_source, _part), members in sorted(groups.items()):
            order = seeded_order(self.ctx.cfg.seed, self.name, cols["pair_id"],
                                 cols["source_index"], members)
            prompt = [cols["prompt_group"][i] or cols["pair_id"][i] for i in order]
            for j in range(round(self.params.fraction * len(order))):
                donor = next((k % len(order) for k in range(j + 1, j + len(order))
                              if prompt[k % len(order)] != prompt[j]), None)
                if donor is not None:
                    chosen.append((self._key(cols, order[j]), self._key(cols, order[donor])))
        return chosen

    @staticmethod
    def _key(cols: dict[str, list], i: int) -> tuple:
        return cols["source"][i], cols["source_index"][i], cols["pair_index"][i] or 0

    def process_dataset(self, live: Any) -> Any:
        light = pa.concat_tables(ray.get(live.select_columns(list(LIGHT)).to_arrow_refs()))
        plan = self.choose(light)
        for (source, index, k), _ in plan:
            self.added_keys.setdefault(source + SUFFIX, []).append((index, k))
        if not plan:
            return live
        donors = {donor for _, donor in plan}
        answers = pa.concat_tables(ray.get(live.map_batches(
            partial(_answers_of, donors), batch_format="pyarrow").to_arrow_refs()))
        given = dict(zip(zip(*(answers.column(c).to_pylist() for c in ROW_KEY), strict=True),
                         answers.column("chosen").to_pylist(), strict=True))
        plan_ref = ray.put({origin: (donor, given[donor]) for origin, donor in plan})
        added = live.map_batches(partial(_added_pairs, plan_ref), batch_format="pyarrow")
        return live.union(added)


def _keys(batch: pa.Table) -> list[tuple]:
    return [(s, i, k or 0) for s, i, k in zip(*(batch.column(c).to_pylist() for c in ROW_KEY),
                                              strict=True)]


def _answers_of(donors: set[tuple], batch: pa.Table) -> pa.Table:
    """The key and chosen answer of the batch's rows that give their answer to another pair."""
    at = [i for i, key in enumerate(_keys(batch)) if key in donors]
    return batch.take(pa.array(at, pa.int64())).select([*ROW_KEY, "chosen"])


def _added_pairs(plan_ref: Any, batch: pa.Table) -> pa.Table:
    """The added pair of each row of the batch that gives one: the row with the other pair's
    chosen answer as its rejected one, under the new source."""
    plan = ray.get(plan_ref)
    at = [(i, plan[key]) for i, key in enumerate(_keys(batch)) if key in plan]
    rows = batch.take(pa.array([i for i, _ in at], pa.int64()))
    prompts, chosen = rows.column("prompt").to_pylist(), rows.column("chosen").to_pylist()
    origin = [row_name(*key) for key in _keys(rows)]
    rejected = [answer for _, (_, answer) in at]
    raw = [json.dumps({"augmented_from": o, "rejected_from": row_name(*donor)})
           for o, (_, (donor, _)) in zip(origin, at, strict=True)]
    for name, values in (
            ("source", [s + SUFFIX for s in rows.column("source").to_pylist()]),
            ("rejected", rejected), ("raw", raw),
            ("pair_id", [pair_id(p, c, r) for p, c, r in zip(prompts, chosen, rejected,
                                                             strict=True)])):
        rows = put_column(rows, name, values)
    return rows

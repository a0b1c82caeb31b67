"""The optional cue balance: a seeded, accounted-for cut that brings a chosen-answer cue within
its tolerance, before any teacher call."""

from __future__ import annotations

import pyarrow as pa
import pytest

from pipeline.engine.config import ConfigError
from pipeline.engine.schema import ALIVE, REJECTED
from pipeline.engine.stage import BuildContext
from pipeline.plan import make_plan
from pipeline.rules.cues import pair_cues
from pipeline.settings import load_config
from stages.cue_balance import CueBalance, CueBalanceParams


def answer(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


def group(longer: int, shorter: int, same: int) -> pa.Table:
    """Pairs whose chosen answer is longer, shorter, or as long as the rejected one."""
    pairs = ([("a b c d", "a b")] * longer + [("a", "a b c")] * shorter
             + [("a b", "c d")] * same)
    n = len(pairs)
    return pa.table({"pair_id": [f"p{i}" for i in range(n)], "source": ["s"] * n,
                     "source_index": list(range(n)), "split": ["rl"] * n,
                     "chosen": [answer(c) for c, _ in pairs],
                     "rejected": [answer(r) for _, r in pairs]})


def test_a_planted_length_cue_is_cut_to_the_tolerance_and_ties_are_left(cfg):
    rows = group(longer=80, shorter=20, same=30)
    stage = CueBalance(CueBalanceParams(cue="longer", tolerance=0.05), BuildContext(cfg))
    out = stage.process(rows).to_pylist()
    kept = [r for r in out if r["outcome"] == ALIVE]
    signs = [pair_cues(r["chosen"][0]["content"], r["rejected"][0]["content"])["longer"]
             for r in kept]
    more, less = signs.count(1), signs.count(-1)
    assert (more, less, signs.count(0)) == (24, 20, 30)  # 24 / 44 = 54.5% <= 55%
    assert more / (more + less) <= 0.55 and (more + 1) / (more + 1 + less) > 0.55
    cut = [r for r in out if r["outcome"] == REJECTED]
    assert len(cut) == 56 and {r["reason"] for r in cut} == {"cue_balance"}
    assert cut[0]["detail"] == ("longer: the chosen answer has more in 80 pairs, the other way "
                                "in 20; cut to 24 (tolerance 0.05)")
    assert stage.process(rows).to_pylist() == out, "the same seed cuts the same pairs"


def test_the_other_side_is_cut_too_and_a_balanced_part_is_left_alone(cfg):
    out = CueBalance(CueBalanceParams(), BuildContext(cfg)).process(group(10, 30, 0)).to_pylist()
    assert sum(r["outcome"] == REJECTED for r in out) == 30 - 12
    calm = CueBalance(CueBalanceParams(), BuildContext(cfg)).process(group(21, 19, 5))
    assert set(calm.column("outcome").to_pylist()) == {ALIVE}


def test_settings_are_checked_before_any_work():
    with pytest.raises(ConfigError, match="cue must be one of longer, more_markdown"):
        make_plan(load_config(["recipe.stages.cue_balance={cue: shorter}"]))
    with pytest.raises(ConfigError, match="tolerance must be in"):
        make_plan(load_config(["recipe.stages.cue_balance={tolerance: 0.5}"]))
    plan = make_plan(load_config(["recipe.stages.cue_balance={cue: more_markdown}"]))
    names = [s.name for s in plan.stages]
    assert names.index("split") < names.index("cue_balance") < names.index("teacher")

"""The optional position balance of the SFT set: equal A and B verdicts per source, seeded."""

from __future__ import annotations

import pyarrow as pa

from pipeline.engine.schema import ALIVE, REJECTED
from pipeline.engine.stage import BuildContext
from pipeline.plan import make_plan
from pipeline.settings import load_config
from stages.balance_positions import BalancePositions


def group(split: str, winners: list[str]) -> pa.Table:
    n = len(winners)
    return pa.table({"pair_id": [f"p{i}" for i in range(n)], "source": ["s"] * n,
                     "source_index": list(range(n)), "split": [split] * n, "winner": winners})


def test_the_majority_side_is_cut_to_the_minority_deterministically(cfg):
    rows = group("sft", ["model_b"] * 7 + ["model_a"] * 3)
    stage = BalancePositions(None, BuildContext(cfg))
    out = stage.process(rows).to_pylist()
    kept = [r for r in out if r["outcome"] == ALIVE]
    assert sorted(r["winner"] for r in kept) == ["model_a"] * 3 + ["model_b"] * 3
    cut = [r for r in out if r["outcome"] == REJECTED]
    assert len(cut) == 4 and {r["reason"] for r in cut} == {"position_balance"}
    assert cut[0]["detail"] == "7 kept traces say B, 3 say A: B cut to 3"
    assert stage.process(rows).to_pylist() == out, "the same seed cuts the same rows"
    reseeded = BalancePositions(None, BuildContext(load_config(["seed=7"]))).process(rows)
    assert reseeded.column("outcome").to_pylist() != [r["outcome"] for r in out]


def test_pairs_kept_in_both_orders_are_never_cut(cfg):
    rows = group("sft", ["model_b"] * 7 + ["model_a"] * 3)
    swapped = [[{"role": "user", "content": "q"}, {"role": "assistant", "content": "t"}]]
    rows = rows.append_column("swap_messages", pa.array(swapped * 5 + [None] * 5))
    out = BalancePositions(None, BuildContext(cfg)).process(rows).to_pylist()
    assert all(r["outcome"] == ALIVE for r in out[:5]), "one A and one B trace each"
    singles = [r["winner"] for r in out[5:] if r["outcome"] == ALIVE]
    assert sorted(singles) == ["model_a"] * 2 + ["model_b"] * 2
    assert {r["detail"] for r in out if r["outcome"] == REJECTED} == {
        "3 kept traces say A, 2 say B: A cut to 2"}


def test_rl_prompts_and_a_balanced_set_are_left_alone(cfg):
    stage = BalancePositions(None, BuildContext(cfg))
    for rows in (group("rl", ["model_b"] * 5), group("sft", ["model_a", "model_b"] * 3)):
        assert set(stage.process(rows).column("outcome").to_pylist()) == {ALIVE}


def test_a_recipe_adds_it_with_one_override():
    names = [s.name for s in make_plan(load_config([])).stages]
    assert "balance_positions" not in names and "swap_consistency" not in names, "off by default"
    plan = make_plan(load_config(["recipe.stages.balance_positions={}",
                                  "recipe.stages.swap_consistency={}"]))
    names = [s.name for s in plan.stages]
    assert names[-3:] == ["swap_consistency", "token_lengths", "balance_positions"]

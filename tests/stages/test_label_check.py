"""The label check as a build runs it: before any teacher, each part's contested pairs dropped
(rejected as contested_label, with the evidence) or kept and marked, as the recipe says."""

from __future__ import annotations

import pytest

from pipeline.engine.config import ConfigError
from pipeline.engine.schema import ALIVE, REJECTED, RL, SFT
from pipeline.engine.stage import BuildContext
from pipeline.plan import make_plan
from pipeline.settings import load_config
from stages.label_check import LabelCheck, LabelCheckParams
from stages.sources import get_source

from conftest import messages
from judged import row, table


def pair(i: int, split: str, chosen: str, rejected: str, reference: str | None) -> dict:
    return row(i, "model_a", split=split) | {
        "chosen": messages(("assistant", chosen)), "rejected": messages(("assistant", rejected)),
        "reference": reference}


ROWS = [pair(0, SFT, "The answer is: 4", "The answer is: 5", "4"),  # verified
        pair(1, SFT, "The answer is: 5", "The answer is: 4", "4"),  # flipped
        pair(2, RL, "The answer is: 5", "The answer is: 4", "4"),  # flipped
        pair(3, RL, "Canberra.", "Sydney.", None)]  # nothing to check


def checked(params: LabelCheckParams) -> dict[int, dict]:
    stage = LabelCheck(params, BuildContext(load_config([])))
    out = stage.process(table(ROWS)).to_pylist()
    return {r["source_index"]: r for r in out}


def test_contested_pairs_are_dropped_with_the_evidence_by_default():
    out = checked(LabelCheckParams())
    assert [out[i]["label_status"] for i in range(4)] == [
        "verified", "contested", "contested", "unverified"]
    assert [out[i]["outcome"] for i in range(4)] == [ALIVE, REJECTED, REJECTED, ALIVE]
    assert out[1]["reason"] == "contested_label" and out[1]["decided_by"] == "label_check"
    assert out[1]["detail"] == out[1]["label_evidence"] == (
        "reference: the chosen answer ends at 5, not the reference 4; the rejected one "
        "reaches it")


def test_each_part_keeps_and_marks_them_when_told():
    out = checked(LabelCheckParams(sft="mark", rl="drop"))
    assert (out[1]["outcome"], out[1]["label_status"]) == (ALIVE, "contested")
    assert (out[2]["outcome"], out[2]["reason"]) == (REJECTED, "contested_label")


def test_a_policy_that_is_neither_is_refused_before_any_work():
    with pytest.raises(ConfigError, match=r"recipe.stages.label_check.sft='keep': set drop"):
        make_plan(load_config(["recipe.stages.label_check.sft=keep"]))


def test_math_step_dpo_publishes_its_answer_as_the_reference():
    cfg = load_config([])
    source = get_source("math_step_dpo")
    pairs = source.map_batch(source.raw_table(cfg.sources.math_step_dpo, use_sample=True),
                             cfg.sources.math_step_dpo).to_pylist()
    kept = [p for p in pairs if p["outcome"] == ALIVE]
    assert kept and all(p["reference"] for p in kept)
    assert kept[0]["reference"] == "324"

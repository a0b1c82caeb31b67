"""Each benchmark's figures, from per-item outcomes, equal those of the benchmark's own code.

The outcomes are in tests/eval_fixtures.py. Every expected number below was computed once by
running the named function of the named repository at the named commit on those outcomes (the
code itself is not in this project); a change to the scoring that moves a number fails here.

- allenai/reward-bench @ 05a9005e: `rewardbench/constants.py` (EXAMPLE_COUNTS, SUBSET_MAPPING),
  `rewardbench/utils.py:calculate_scores_per_section`, `scripts/run_generative.py` (a verdict
  1 or 0, an error 0.5; a subset's score sum/len), the leaderboard's mean of the 4 sections;
  RewardBench 2 pairwise: `rewardbench/utils.py:reroll_and_score_dataset` (1/k for a k-way tie
  at the top, the chosen answer first), with a pairwise outcome as a score (right: the other
  answer below, no verdict: level, wrong: above). RewardBench 2 as its generative harness scores
  it (@ 05a9005efb607249822c193590c8ecab87c77052): best of four, `scripts/run_generative_v2.py`'s
  `get_judgement` (1 when the named letter is the correct one's, 0 for another, 0.25 else; a
  subset's num_correct / num_total); ratings, `rewardbench/generative_v2.py:run_judge_ratings_multi`
  (with `get_single_rating` answering the fixture's ratings, -1 for none) and the script's
  `(0 in winners) / len(winners)`, 0.25 on "error"; Ties, `rewardbench/utils.py:process_single_model`
  on the fixture's rows (`id`, `num_correct`, `scores`); the score, the leaderboard's mean of the
  six subsets.
- THU-KEG/RM-Bench @ 73c52d7b: `scripts/utils.py:compute_accuracy` (domains by prefix, 3x3
  matrix, hard/normal/easy triangles, means over domains).
- RM-Bench as RM-R1 scores a generative judge, RM-R1-UIUC/RM-R1 @ d4c2542f:
  `eval/RM-Bench/scripts/process_final_result.py:compute_accuracy_gen` (per-item outcome
  matrices, an error 0).
- RMB as RM-R1 scores a generative judge, RM-R1-UIUC/RM-R1 @ d4c2542f:
  `eval/RMB-Reward-Model-Benchmark/eval/scripts/run_generative.py` (Overall_accuracy = sum/len
  per goal, an error 0), `run_generative_bestofn.py` (an item right only when every comparison
  is 1), `process_final_result.py` (the mean of the four sets).
"""

from __future__ import annotations

import pytest

from pipeline.evaluation import both_orders_outcome
from stages.benchmarks.pairwise import (
    RMB,
    Item,
    RewardBench,
    RewardBench2,
    RMBBestOfN,
    RMBench,
    first_per_group,
    rmb_four_sets,
    ties_score,
)

import eval_fixtures as F

Q = [{"role": "user", "content": "q"}]


def pairwise_items(outcomes: dict[str, list]) -> tuple[list[Item], dict]:
    items, out = [], {}
    for group, values in outcomes.items():
        for k, v in enumerate(values):
            items.append(Item(f"{group}:{k}", group, Q, {"": ("good", "bad")}))
            out[f"{group}:{k}"] = {"": None if v is None else float(v)}
    return items, out


def multi_items(outcomes: dict[str, list[list]]) -> tuple[list[Item], dict]:
    items, out = [], {}
    for group, per_item in outcomes.items():
        for k, values in enumerate(per_item):
            slots = {str(i): ("good", "bad") for i in range(len(values))}
            items.append(Item(f"{group}:{k}", group, Q, slots))
            out[f"{group}:{k}"] = {str(i): None if v is None else float(v)
                                   for i, v in enumerate(values)}
    return items, out


def rm_bench_items(rows) -> tuple[list[Item], dict]:
    items, out = [], {}
    for k, (domain, matrix) in enumerate(rows):
        slots = {f"{i}-{j}": ("good", "bad") for i in range(3) for j in range(3)}
        items.append(Item(str(k), domain, Q, slots))
        out[str(k)] = {f"{i}-{j}": None if v is None else float(v)
                       for i, row in enumerate(matrix) for j, v in enumerate(row)}
    return items, out


def close(got: dict, expected: dict) -> None:
    assert set(got) == set(expected)
    for k, v in expected.items():
        assert got[k] == pytest.approx(v, abs=5e-5), k


# -- RewardBench ------------------------------------------------------------------------------

def test_rewardbench_equals_its_own_code_with_missing_verdicts_as_ties():
    items, outcomes = pairwise_items(F.REWARDBENCH)
    s = RewardBench().score(items, outcomes)
    # calculate_scores_per_section(EXAMPLE_COUNTS, SUBSET_MAPPING, per-subset sum/len)
    close(s["sections"], {"Chat": 0.6382978723404256, "Chat Hard": 0.5947176684881602,
                          "Safety": 0.7743484224965708, "Reasoning": 0.40625})
    assert s["score"] == pytest.approx(0.6034034908312892, abs=5e-5)
    assert s["subsets"]["alpacaeval-easy"] == 0.625 and s["subsets"]["hep-go"] == 0.25


def test_rewardbench_keeps_the_official_weights_under_a_limit():
    """--limit 1: one item per subset, the sections still weighted by the published counts."""
    items, outcomes = pairwise_items(F.REWARDBENCH)
    s = RewardBench().score(first_per_group(items, 1), outcomes)
    close(s["sections"], {"Chat": 1.0, "Chat Hard": 0.7486338797814208,
                          "Safety": 0.720164609053498, "Reasoning": 0.875})
    assert s["score"] == pytest.approx(0.8359496222087297, abs=5e-5)


def test_rewardbench_scores_a_section_with_no_subset_judged_zero_as_its_code_does():
    items, outcomes = pairwise_items({k: v for k, v in F.REWARDBENCH.items()
                                      if k not in F.SAFETY})
    s = RewardBench().score(items, outcomes)
    assert s["sections"]["Safety"] == 0.0 and s["sections_not_judged"] == ["Safety"]
    assert s["score"] == pytest.approx(0.40981638520714647, abs=5e-5)


# -- RM-Bench ---------------------------------------------------------------------------------

def test_rm_bench_averages_domains_as_its_code_does():
    items, outcomes = rm_bench_items(F.RM_BENCH)
    s = RMBench().score(items, outcomes)
    # RM-R1's compute_accuracy_gen (RM-Bench's compute_accuracy on outcome matrices)
    assert s["score"] == pytest.approx(0.6527777777777777, abs=5e-5)
    close({k: s[k] for k in ("hard", "normal", "easy")},
          {"hard": 0.375, "normal": 0.6666666666666667, "easy": 0.9166666666666666})
    close({d: v["score"] for d, v in s["domains"].items()},
          {"chat": 0.6666666666666666, "math": 1.0, "code": 0.3333333333333333,
           "safety": 0.6111111111111112})
    assert s["domains"]["safety"]["prompts"] == 2, "safety-refuse and safety-response together"


def test_rm_bench_on_scores_equals_thu_kegs_compute_accuracy():
    """A scored model's outcomes (chosen score > rejected score), through RM-Bench's own
    compute_accuracy: the same figures."""
    scored = [("chat", [3, 5, 7], [4, 6, 2]), ("math", [1, 1, 9], [0, 2, 2]),
              ("code", [5, 5, 5], [1, 5, 9]), ("safety-refuse", [2, 3, 4], [1, 2, 3]),
              ("safety-response", [0, 0, 0], [1, 1, 1])]
    rows = [(d, [[int(c > r) for r in rej] for c in cho]) for d, cho, rej in scored]
    s = RMBench().score(*rm_bench_items(rows))
    assert s["score"] == pytest.approx(0.47222222222222215, abs=5e-5)
    close({k: s[k] for k in ("hard", "normal", "easy")},
          {"hard": 0.16666666666666666, "normal": 0.4583333333333333, "easy": 0.7916666666666666})
    close({d: v["score"] for d, v in s["domains"].items()},
          {"chat": 0.6666666666666666, "math": 0.5555555555555555, "code": 0.3333333333333333,
           "safety": 0.3333333333333333})


def test_rm_bench_names_the_domains_it_did_not_judge():
    items, outcomes = rm_bench_items([r for r in F.RM_BENCH if r[0] != "math"])
    s = RMBench().score(items, outcomes)
    assert s["domains_not_judged"] == ["math"] and "math" not in s["domains"]


# -- RMB --------------------------------------------------------------------------------------

def test_rmb_pairwise_and_best_of_n_and_their_mean_equal_rm_r1s_harness():
    pw = RMB().score(*pairwise_items(F.RMB_PAIRWISE))
    bon = RMBBestOfN().score(*multi_items(F.RMB_BON))
    close(pw["goals"], {"Helpfulness": 0.5714285714285714, "Harmlessness": 0.6})
    close(bon["goals"], {"Helpfulness": 0.5, "Harmlessness": 0.75})
    four = rmb_four_sets(pw, bon)
    assert four["score"] == pytest.approx(0.6053571428571428, abs=5e-5)
    assert set(four["sets"]) == {"Pairwise Helpfulness", "Pairwise Harmlessness",
                                 "BoN Helpfulness", "BoN Harmlessness"}
    assert rmb_four_sets(pw, {"goals": {"Helpfulness": 0.5}})["score"] is None, "needs all four"


# -- RewardBench 2 ----------------------------------------------------------------------------

def test_rewardbench2_gives_1_over_k_for_a_k_way_tie_and_is_never_called_the_score():
    s = RewardBench2("pairwise").score(*multi_items(F.REWARDBENCH2))
    # reroll_and_score_dataset's rule, per item, averaged per subset
    close(s["subsets"], {"Factuality": 0.4375, "Precise IF": 0.6666666666666666, "Math": 0.5,
                         "Safety": 1.0, "Focus": 0.6666666666666666})
    assert s["score"] is None and s["not_judged"] == ["Ties"]
    assert s["mean_of_5_subsets"] == pytest.approx(
        (0.4375 + 0.6666666666666666 + 0.5 + 1.0 + 0.6666666666666666) / 5, abs=5e-5)


def rb2_items(per_subset: dict[str, list], slots) -> tuple[list[Item], dict]:
    """Items of four answers (the correct one first) and their outcomes, slot by slot; with
    the Ties fixture's items, each answer rated."""
    items, out = [], {}
    for group, values in per_subset.items():
        for k, v in enumerate(values):
            items.append(Item(f"{group}:{k}", group, Q, {}, ("good", "b1", "b2", "b3")))
            out[f"{group}:{k}"] = slots(v)
    for item_id, correct, ratings in F.RB2_TIES:
        items.append(Item(item_id, "Ties", Q, {}, tuple(f"a{i}" for i in range(len(ratings))),
                          correct))
        out[item_id] = {f"rate{i}": r for i, r in enumerate(ratings)}
    return items, out


# process_single_model on F.RB2_TIES
TIES = 0.47555721450000354


def test_rewardbench2_best_of_four_with_ties_rated_is_its_leaderboards_score():
    items, out = rb2_items(F.RB2_BEST_OF_FOUR, lambda v: {"four": v})
    s = RewardBench2("best_of_four").score(items, out)
    subsets = {"Factuality": 0.5625, "Precise IF": 0.6666666666666666, "Math": 0.125,
               "Safety": 0.8, "Focus": 0.625, "Ties": TIES}
    close(s["subsets"], subsets)
    assert s["score"] == pytest.approx(0.5424539801944451, abs=5e-5)
    assert "not_judged" not in s and s["protocol"] == "best_of_four"


def test_rewardbench2_ratings_give_1_over_k_at_the_top_and_minus_1_for_none_read():
    items, out = rb2_items(F.RB2_RATINGS, lambda v: {f"rate{i}": r for i, r in enumerate(v)})
    s = RewardBench2("ratings").score(items, out)
    close(s["subsets"], {"Factuality": 0.4375, "Precise IF": 0.625, "Math": 0.5,
                         "Safety": 0.3333333333333333, "Focus": 0.5, "Ties": TIES})
    assert s["score"] == pytest.approx(0.47856509130555613, abs=5e-5)


def test_rewardbench2_ties_alone_and_a_missing_subset_give_no_score():
    s = RewardBench2("best_of_four").score(*rb2_items({}, None))
    assert s["subsets"] == {"Ties": round(TIES, 4)} and s["score"] is None
    assert s["not_judged"] == ["Factuality", "Precise IF", "Math", "Safety", "Focus"]
    refs = [(i, n, [-1 if r is None else r for r in rs]) for i, n, rs in F.RB2_TIES
            if i.startswith("ref")]
    assert ties_score(refs) is None, "no prompt with both its ref and its tied item"


def test_both_orders_is_right_only_when_both_are():
    assert both_orders_outcome([1.0, 1.0]) == 1.0
    assert both_orders_outcome([1.0, 0.0]) == both_orders_outcome([None, 0.0]) == 0.0
    assert both_orders_outcome([1.0, None]) is None

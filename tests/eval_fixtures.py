"""Per-item outcomes for the eval scoring tests: 1 (the judge picked the better answer), 0 (the
worse), None (no verdict). Shared by tests/test_eval_scores.py and by the script that computed
the expected figures with the benchmarks' own code (named with each figure in the tests)."""

# RewardBench: outcomes per subset, in order (a missing verdict is the harness's 0.5).
REWARDBENCH = {
    "alpacaeval-easy": [1, 1, 0, None], "alpacaeval-hard": [1, 0], "mt-bench-med": [1, 1, 1],
    "mt-bench-hard": [1, None, 0], "llmbar-natural": [1, 1, 1, 0], "llmbar-adver-manual": [0, 0, 1],
    "donotanswer": [0, 1], "xstest-should-respond": [1, 1, None], "refusals-dangerous": [1],
    "math-prm": [1, 0, 0], "hep-python": [1, 1], "hep-go": [0, None],
}
SAFETY = ("donotanswer", "xstest-should-respond", "refusals-dangerous")

# RM-Bench: (domain, 3x3 outcomes, rows = chosen style, columns = rejected style)
RM_BENCH = [
    ("chat", [[1, 0, 0], [1, 1, 0], [1, 1, 1]]),
    ("chat", [[1, None, 0], [1, 1, 1], [1, 1, 0]]),
    ("math", [[1, 1, 1], [1, 1, 1], [1, 1, 1]]),
    ("code", [[0, 0, 0], [1, 0, 0], [1, 1, None]]),
    ("safety-refuse", [[1, 1, 0], [1, 1, 1], [1, 1, 1]]),
    ("safety-response", [[0, 0, 0], [0, 1, 0], [1, 0, 1]]),
]

# RMB: pairwise outcomes per category, and best-of-N items (one outcome per rejected answer).
RMB_PAIRWISE = {
    "Pairwise_set/Helpfulness/Chat/Discussion": [1, 1, 0, None],
    "Pairwise_set/Helpfulness/Code/Documentation": [1, 0, 1],
    "Pairwise_set/Harmlessness/S1": [1, 1, 1, 0, None],
}
RMB_BON = {
    "BoN_set/Helpfulness/Chat/Discussion": [[1, 1, 1], [1, 0, 1], [1, None, 1]],
    "BoN_set/Helpfulness/Code/Documentation": [[1, 1]],
    "BoN_set/Harmlessness/S1": [[1, 1, 1], [0, 0, 0], [1, 1, 1], [1, 1]],
}

# RewardBench 2: per subset, each item's outcomes against its three incorrect answers.
REWARDBENCH2 = {
    "Factuality": [[1, 1, 1], [1, 0, 1], [1, None, 1], [None, None, None]],
    "Precise IF": [[1, 1, 1], [None, 1, None]],
    "Math": [[0, 0, 0], [1, 1, 1]],
    "Safety": [[1, 1, 1]],
    "Focus": [[1, 1, 0], [1, 1, 1], [1, 1, 1]],
}

# RewardBench 2, best of four: per subset, each item's judgement (1: the correct answer named
# best, 0: another one, None: no verdict, the harness's 0.25).
RB2_BEST_OF_FOUR = {
    "Factuality": [1, 0, None, 1], "Precise IF": [1, 1, 0], "Math": [0, None],
    "Safety": [1, 1, 1, 1, 0], "Focus": [None, 1],
}
# ... rated: per subset, each item's ratings (the correct answer first; None: none read, -1).
RB2_RATINGS = {
    "Factuality": [[9, 3, 5, 7], [6, 6, 2, 1], [None, 8, 2, 3], [None, None, None, None]],
    "Precise IF": [[7, 7, 7, 7], [10, 9, None, 8]],
    "Math": [[2, 2, 9, 1], [5, None, None, None]],
    "Safety": [[8, 8, 8, 1]],
    "Focus": [[3, 9, 9, 9], [10, 1, 1, 1]],
}
# Ties: (id, correct answers, ratings in answer order, the correct ones first). Prompt 0 rates
# every correct answer alike above the incorrect (a zero spread), 1 puts an incorrect answer
# on top, 2 has a missing rating, 3 a negative margin on its ref item only, 4 a ref item with
# no tied partner.
RB2_TIES = [
    ("ref:0", 1, [9, 4, 3]), ("tied:0", 3, [9, 9, 9, 4, 2]),
    ("ref:1", 1, [6, 8, 2]), ("tied:1", 2, [7, 5, 8, 1]),
    ("ref:2", 1, [8, None, 1]), ("tied:2", 3, [9, 6, None, 3, 2]),
    ("ref:3", 1, [5, 6, 1]), ("tied:3", 2, [10, 8, 4, 3]),
    ("ref:4", 1, [7, 2, 2]),
]

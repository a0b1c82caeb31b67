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

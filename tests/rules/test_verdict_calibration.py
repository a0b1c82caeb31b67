"""The trace checks measured on traces nobody here wrote: RM-R1's released judging logs, and an
adversarial set made from them by one edit each (tests/data/traces, README there).

Every good trace the filter rejects was paid for; every flawed one it keeps teaches SFT a
judgement that is not one. The numbers are pinned: a change that moves them fails here, and
bench/trace_checks.py prints the same table for bench/RESULTS.md.
"""

from __future__ import annotations

from collections import Counter

import pytest

from bench.trace_checks import adversarial_traces, real_traces, reason_of
from pipeline.rules.verdict import compute_score, score
from pipeline.settings import load_config

INSTRUCTIONS = load_config([]).prompt.system
REAL = real_traces()
ADVERSARIAL = adversarial_traces()
OWN_LAYOUT = [r for r in REAL if r["layout"] == "chain_of_rubrics"]


def test_the_verdict_rule_agrees_with_the_judges_own_harness():
    """RM-R1's harness logged each judgement right (1) or wrong (0): the RL rule says the same of
    all 16, in both layouts."""
    assert len(REAL) == 16
    assert [score(r["trace"], r["winner"]) == 1 for r in REAL] == [
        r["logged_result"] == 1 for r in REAL]


@pytest.mark.parametrize("row", [r for r in OWN_LAYOUT if r["logged_result"] == 1],
                         ids=lambda r: f"{r['judge'][6:13]}-{r['origin']['path'].split('/')[4]}"
                                       f"-{r['origin']['index']}")
def test_no_good_trace_in_the_builds_layout_is_rejected(row):
    """Quotes with their markdown, bullets, case, quote marks or link targets changed, excerpts
    joined across skipped sentences, a stray </answer> after the verdict: all kept."""
    assert reason_of(row, INSTRUCTIONS) == ""


def test_pinned_counts_on_real_traces():
    by_group = Counter((r["layout"], r["logged_result"], reason_of(r, INSTRUCTIONS)) for r in REAL)
    assert by_group == {
        ("chain_of_rubrics", 1, ""): 6,  # 0 of 6 good traces rejected (goal: at most 2%)
        ("chain_of_rubrics", 0, "wrong_verdict"): 2,
        # RM-R1's distilled judges write free `<think>` reasoning and a verdict: no rubric, no
        # cited evaluation. Not the layout the build asks for, so never SFT data here.
        ("think", 1, "bad_format"): 6,
        ("think", 0, "bad_format"): 2,
    }


def test_a_stray_closing_tag_is_kept_and_still_rewarded():
    stray = [r for r in OWN_LAYOUT if r["trace"].rstrip().endswith("</answer>\n</answer>")]
    assert len(stray) == 1 and reason_of(stray[0], INSTRUCTIONS) == ""
    assert compute_score("x", stray[0]["trace"], stray[0]["winner"]) == 1.0
    # only closing tags may follow the verdict: any other text still breaks the format
    for tail in ("\n</answer> Hope this helps.", "\n<answer>[[A]]", "\n</eval>", "\n</justify>",
                 "</answer>\n<quote_A>"):
        assert reason_of(stray[0] | {"trace": stray[0]["trace"] + tail}, INSTRUCTIONS) != ""


def test_every_adversarial_trace_is_caught_for_its_flaw():
    caught = Counter((a["kind"], reason_of(a, INSTRUCTIONS)) for a in ADVERSARIAL)
    assert caught == {(a["kind"], a["expected_reason"]): 6 for a in ADVERSARIAL}
    assert len(ADVERSARIAL) == 48
    # the RL reward reads only the verdict: these all score +1 there, which is why SFT needs
    # the filter
    assert all(score(a["trace"], a["winner"]) == 1 for a in ADVERSARIAL)

"""The trace checks measured on traces nobody here wrote (RM-R1's released judging logs), an
adversarial set made from them by one edit each, and a synthetic set of our own with one good
trace for each shape a strong judge's quotes were seen to take and one flawed trace for each
flaw (tests/data/traces, README there).

Every good trace the filter rejects was paid for; every flawed one it keeps teaches SFT a
judgement that is not one. The numbers are pinned: a change that moves them fails here, and
bench/trace_checks.py prints the same table for bench/RESULTS.md.
"""

from __future__ import annotations

import runpy
from collections import Counter
from pathlib import Path

import pytest

from bench.trace_checks import adversarial_traces, check, real_traces, reason_of, synthetic_traces
from pipeline.rules.trace_checks import MIN_QUOTE_FIDELITY
from pipeline.rules.verdict import compute_score, score
from pipeline.settings import load_config

INSTRUCTIONS = load_config([]).prompt.system
REAL = real_traces()
ADVERSARIAL = adversarial_traces()
OWN_LAYOUT = [r for r in REAL if r["layout"] == "chain_of_rubrics"]
SYNTHETIC = synthetic_traces()


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
    # closing tags of the answer and the evaluation, in any order, may follow the verdict
    for tail in ("\n</eval>", " </eval>\n</answer>\n", "\n</answer></eval></answer>"):
        kept = stray[0] | {"trace": stray[0]["trace"] + tail}
        assert reason_of(kept, INSTRUCTIONS) == "", tail
        assert compute_score("x", kept["trace"], kept["winner"]) == 1.0
    # any other text still breaks the format
    for tail in ("\n</answer> Hope this helps.", "\n<answer>[[A]]", "\n</justify>",
                 "</answer>\n<quote_A>", "\n</eval> Done."):
        assert reason_of(stray[0] | {"trace": stray[0]["trace"] + tail}, INSTRUCTIONS) != "", tail


def test_every_adversarial_trace_is_caught_for_its_flaw():
    caught = Counter((a["kind"], reason_of(a, INSTRUCTIONS)) for a in ADVERSARIAL)
    assert caught == {(a["kind"], a["expected_reason"]): 6 for a in ADVERSARIAL}
    assert len(ADVERSARIAL) == 48
    # the RL reward reads only the verdict: these all score +1 there, which is why SFT needs
    # the filter
    assert all(score(a["trace"], a["winner"]) == 1 for a in ADVERSARIAL)


@pytest.mark.parametrize("row", [s for s in SYNTHETIC if s["group"] == "good"],
                         ids=lambda s: s["kind"])
def test_every_good_shape_a_strong_judge_writes_is_kept(row):
    """Pieces joined by "and" or commas, an editorial mark, LaTeX written plainly, one word
    dropped, changed or added, the judge's words around a quoted passage, a stray closing tag:
    each one a right-verdict trace that was paid for."""
    got = check(row, INSTRUCTIONS)
    assert got.reason == "", got
    assert MIN_QUOTE_FIDELITY <= got.quote_fidelity <= 1


@pytest.mark.parametrize("row", [s for s in SYNTHETIC if s["group"] == "flawed"],
                         ids=lambda s: s["kind"])
def test_every_flawed_shape_is_caught_for_its_own_flaw(row):
    assert reason_of(row, INSTRUCTIONS) == row["expected_reason"]
    assert score(row["trace"], row["winner"]) == 1  # the RL reward alone would pay for it


def test_the_synthetic_set_has_one_case_per_shape_and_is_written_by_its_script():
    script = runpy.run_path(str(Path(__file__).parents[1] / "data/traces/make_synthetic.py"))
    assert script["rows"]() == SYNTHETIC
    assert Counter(s["group"] for s in SYNTHETIC) == {"good": 12, "flawed": 10}
    shapes = {s["shape"] for s in SYNTHETIC}
    assert {"several quoted pieces in one tag", "an editorial mark", "math written another way",
            "one word dropped or changed", "the judge's own words around a real quote",
            "a stray </eval> after the verdict", "invented sentence",
            "one from the other answer", "one from the question", "a quote of the instructions",
            "the verdict alone", "a looped closing sentence"} <= shapes


def test_the_threshold_sits_between_loose_quotes_and_invented_ones():
    """The default threshold keeps the loosest good quote and is above every invented one, with
    room on both sides: moving it by 0.05 either way changes nothing on these sets."""
    good = [check(s, INSTRUCTIONS).quote_fidelity for s in SYNTHETIC if s["group"] == "good"]
    invented = [check(a, INSTRUCTIONS).quote_fidelity for a in ADVERSARIAL
                if a["kind"] in ("invented_quote", "other_sides_quote", "question_as_quote")]
    assert max(invented) + 0.05 < MIN_QUOTE_FIDELITY < min(good) - 0.05
    for shifted in (MIN_QUOTE_FIDELITY - 0.05, MIN_QUOTE_FIDELITY + 0.05):
        assert [reason_of(r, INSTRUCTIONS, shifted) for r in [*SYNTHETIC, *ADVERSARIAL]] == [
            reason_of(r, INSTRUCTIONS) for r in [*SYNTHETIC, *ADVERSARIAL]]

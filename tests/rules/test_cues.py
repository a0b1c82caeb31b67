"""Cues other than quality in the kept pairs: what each counts, and the report's shares and
intervals."""

from __future__ import annotations

import pytest

from pipeline.engine.schema import KEPT
from pipeline.output.manifest import Tally, cue_report, far_cues
from pipeline.rules.cues import code_blocks, markdown, pair_cues, wilson, words

MD = "# Plan\n\n1. first\n2. second\n- a **bold** point\n"
CODE = "Here:\n```python\nprint(1)\n```\nand\n~~~\nx\n~~~\n"


def test_each_cue_counts_what_it_names():
    assert words("one two  three\nfour") == 4
    assert markdown(MD) == 5  # a header, three list items, a bold span
    assert markdown("Plain text with a * star and 3.5 apples.") == 0
    assert code_blocks(CODE) == 2 and code_blocks("inline `code` only") == 0
    assert pair_cues(MD + CODE, "short") == {"longer": 1, "more_markdown": 1,
                                             "more_code_blocks": 1}
    assert pair_cues("a b", "c d") == {"longer": 0, "more_markdown": 0, "more_code_blocks": 0}
    assert pair_cues("a", "b c")["longer"] == -1


@pytest.mark.parametrize("k, n, low, high", [(50, 100, 0.4038, 0.5962), (0, 10, 0.0, 0.2775),
                                             (10, 10, 0.7225, 1.0), (81, 100, 0.7222, 0.8749)])
def test_the_interval_is_wilsons(k, n, low, high):
    assert wilson(k, n) == pytest.approx((low, high), abs=1e-4)
    assert wilson(0, 0) is None


def kept(source, part, chosen, rejected, winner="model_a"):
    return {"source": source, "source_index": 0, "pair_index": 0, "outcome": KEPT, "split": part,
            "reason": "", "decided_by": "", "winner": winner,
            "chosen": [{"role": "assistant", "content": chosen}],
            "rejected": [{"role": "assistant", "content": rejected}]}


def test_the_report_finds_a_planted_length_cue_and_says_it():
    """70 of 80 rl pairs whose chosen answer is longer (10 shorter, 20 of equal length): 87.5%
    of those that differ, far from half; markdown is planted at no rate."""
    rows = ([kept("s", "rl", "a b c d", "a b")] * 70 + [kept("s", "rl", "a", "a b")] * 10
            + [kept("s", "rl", "a b", "c d")] * 20
            + [kept("s", "sft", "x", "y", w) for w in ["model_a"] * 3 + ["model_b"] * 3])
    tally = Tally()
    tally.add(rows)
    report = {(c["part"], c["cue"]): c for c in cue_report(tally)}
    longer = report[("rl", "longer")]
    assert (longer["pairs"], longer["differ"], longer["chosen_more"]) == (100, 80, 70)
    assert longer["share"] == 0.875 and longer["interval"] == wilson(70, 80)
    assert report[("rl", "more_markdown")]["share"] is None  # no pair differs in markdown
    assert report[("sft", "verdict_a")]["share"] == 0.5
    assert [(c["part"], c["cue"]) for c in far_cues(list(report.values()))] == [("rl", "longer")]


def test_length_is_compared_in_tokens_where_the_build_counted_them():
    """Three words against two, but 5 tokens against 9: tokens decide, and the report says so."""
    counted = kept("s", "rl", "a b c", "d e") | {"chosen_tokens": 5, "rejected_tokens": 9}
    tally = Tally()
    tally.add([counted, kept("w", "rl", "a b c", "d e")])
    report = {(c["source"], c["cue"]): c for c in cue_report(tally)}
    assert report[("s", "longer")]["chosen_more"] == 0 and report[("s", "longer")]["unit"] == "tokens"
    assert report[("w", "longer")]["chosen_more"] == 1 and report[("w", "longer")]["unit"] == "words"
    assert "unit" not in report[("s", "more_markdown")]

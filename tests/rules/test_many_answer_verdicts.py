"""The verdicts of RewardBench 2's other two judgements: the best of four answers, and one
answer's rating; read like the pairwise verdict, from the trace's last 80 characters."""

from __future__ import annotations

import pytest

from pipeline.rules.best_of_four import best_of_four_verdict
from pipeline.rules.rating import rating_of

BODY = "<type>Chat</type>\n<rubric>Accuracy<justify>Facts.</justify>\n</rubric>\n<eval>...</eval>\n"


@pytest.mark.parametrize("letter", "ABCD")
def test_each_of_four_letters_is_read(letter):
    assert best_of_four_verdict(f"{BODY}<answer>[[{letter}]]</answer>") == letter


@pytest.mark.parametrize("text", [
    f"{BODY}<answer>[[A]]</answer> or <answer>[[D]]</answer>",  # two verdicts
    f"<answer>[[C]]</answer>{'x' * 100}",  # not at the end
    f"{BODY}<answer>[[E]]</answer>", f"{BODY}[[B]]", "", None,
])
def test_anything_but_one_verdict_at_the_end_is_none(text):
    assert best_of_four_verdict(text) is None


@pytest.mark.parametrize("tag, rating", [("<answer>1</answer>", 1), ("<answer>7</answer>", 7),
                                         ("<answer> 10 </answer>", 10)])
def test_a_rating_from_1_to_10_is_read(tag, rating):
    assert rating_of(f"{BODY}{tag}") == rating


@pytest.mark.parametrize("text", [
    f"{BODY}<answer>0</answer>", f"{BODY}<answer>11</answer>", f"{BODY}<answer>7.5</answer>",
    f"{BODY}<answer>[[7]]</answer>", f"{BODY}<answer>6</answer><answer>8</answer>",
    f"<answer>9</answer>{'x' * 100}", "", None,
])
def test_anything_but_one_rating_at_the_end_is_none(text):
    assert rating_of(text) is None

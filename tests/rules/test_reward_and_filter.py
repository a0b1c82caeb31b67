"""One verdict rule: the filter keeps only what verl's reward scores +1."""

from __future__ import annotations

import pytest

from pipeline.rules.trace_checks import check_trace
from pipeline.rules.verdict import compute_score

from judged import trace

ADVERSARIAL = [
    trace("A"), trace("B"),
    trace("A", note="B wrote <answer>[[B]]</answer> in its reply."),  # quoted tag, early
    trace("A") + "\n<answer>[[B]]</answer>",  # two verdicts at the end
    trace("A") + " Hope this helps!",  # text after the verdict
    trace("A").replace("<answer>[[A]]</answer>", "<answer>[[ A ]]</answer>"),
    trace("A").replace("[[A]]", "[[a]]"), trace("A").replace("[[A]]", "[[C]]"),
    trace("A").replace("<answer>", "<Answer>"), "<answer>[[A]]</answer>", "[[A]]", "", "   ",
    trace("A") + "\n\n\n   ", trace("A").replace("Chatbot", "Chabot"),
    "<answer>[[A]]</answer>" + " filler" * 30 + "<answer>[[B]]</answer>",
    trace("B") + "x" * 81, "<answer>[[B]]</answer>" + "y" * 60,
]


@pytest.mark.parametrize("text", ADVERSARIAL)
@pytest.mark.parametrize("winner", ["model_a", "model_b"])
def test_verl_reward_and_filter_agree(text, winner):
    """The filter keeps only what the reward scores +1; what it punishes is never kept."""
    reward = compute_score("rubricforge/s", text, winner, {"index": 0})
    kept = check_trace(text, winner).reason == ""
    assert reward in (1.0, -1.0)
    assert not kept or reward == 1.0
    assert reward == 1.0 or not kept

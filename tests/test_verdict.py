"""The verdict rule and the trace format check, including texts written to fool them."""

from __future__ import annotations

import re

import pytest

from pipeline.verdict import (
    check_trace,
    compute_score,
    score,
    trace_regex,
    trl_reward,
    verdict_of,
)

CHAT = ("<type>Chat</type>\n<rubric>1. Accuracy (weight 70%) 2. Clarity (30%)\n"
        "<justify>Facts matter most here.</justify>\n</rubric>\n"
        "<eval><quote_A>Canberra</quote_A> is right; <summary_B>B says Sydney</summary_B>, wrong."
        "</eval>\n<answer>[[A]]</answer>")
REASONING = ("<type>Reasoning</type>\n<solution>2 + 2 = 4</solution>\n"
             "<eval><quote_A>5</quote_A> is wrong, <quote_B>4</quote_B> is right.</eval>\n"
             "<answer>[[B]]</answer>")


def test_good_traces_pass():
    assert check_trace(CHAT, "model_a").reason == ""
    assert check_trace(REASONING, "model_b").reason == ""
    assert check_trace(CHAT, "model_a").task_type == "Chat"


def test_wrong_verdict():
    check = check_trace(CHAT, "model_b")
    assert check.reason == "wrong_verdict" and check.verdict == "A"


@pytest.mark.parametrize("text, reason", [
    ("", "empty_trace"),
    ("   \n", "empty_trace"),
    ("I think A is better.", "no_verdict"),
    ("[[A]] is my answer", "no_verdict"),  # RM-R1's pass-1 filter would have taken this
    (CHAT.replace("<answer>[[A]]</answer>", "<answer>[[A]]</answer>\n" + "x" * 80), "no_verdict"),
    (CHAT + " <answer>[[B]]</answer>", "ambiguous_verdict"),
    ("Chatbot A wrote <answer>[[B]]</answer> but I pick <answer>[[A]]</answer>",
     "ambiguous_verdict"),
    (CHAT.replace("<type>Chat</type>\n", ""), "bad_format"),
    (CHAT.replace("<justify>", "<justfy>"), "bad_format"),
    (CHAT.replace("<type>Chat</type>", "<type>Reasoning</type>"), "bad_format"),
    (CHAT.replace("<quote_A>Canberra</quote_A>", "Canberra"), "bad_format"),
    (CHAT.replace("</eval>", ""), "bad_format"),
    (CHAT.replace("<answer>[[A]]</answer>", "<answer>[[A]]</answer> Done."), "bad_format"),
    ("Intro. " + CHAT, "bad_format"),
])
def test_bad_traces(text, reason):
    assert check_trace(text, "model_a").reason == reason


def test_a_quoted_verdict_inside_the_evaluation_does_not_count():
    """A response that contains the tags is quoted far from the end: only the real verdict counts."""
    quoted = CHAT.replace("<quote_A>Canberra</quote_A>",
                          "<quote_A>Canberra <answer>[[B]]</answer></quote_A>")
    assert verdict_of(quoted) == "A"
    assert check_trace(quoted, "model_a").reason == ""


def test_reward_matches_the_rl_rule():
    assert score(CHAT, "model_a") == 1 and score(CHAT, "A") == 1
    assert score(CHAT, "model_b") == -1
    assert score("no verdict", "model_a") == -1
    assert compute_score("rubricforge/skywork", CHAT, "model_a", {}) == 1.0
    assert compute_score("rubricforge/skywork", REASONING, "model_a", {}) == -1.0


# text, winner, the filter's decision, the reward (verl's and TRL's): each case has its own
# expected outcome, so a filter that rejects everything, or a reward that pays everything, fails.
AGREEMENT = [
    (CHAT, "model_a", "", 1.0),
    (CHAT, "model_b", "wrong_verdict", -1.0),
    (REASONING, "model_b", "", 1.0),
    (CHAT.replace("[[A]]", "[[B]]"), "model_b", "", 1.0),
    (CHAT + " <answer>[[B]]</answer>", "model_a", "ambiguous_verdict", -1.0),
    (CHAT[:-3], "model_a", "no_verdict", -1.0),
    ("", "model_a", "empty_trace", -1.0),
    # the reward reads only the verdict; the filter also wants the layout
    (REASONING.replace("<solution>", ""), "model_b", "bad_format", 1.0),
    ("<answer>[[A]]</answer>", "model_a", "bad_format", 1.0),
    (CHAT.replace("<answer>[[A]]</answer>", "<answer>[[A]]</answer> Done."), "model_a",
     "bad_format", 1.0),
    # a verdict pushed out of the last 80 characters counts for neither
    (CHAT + "\n" + "x" * 80, "model_a", "no_verdict", -1.0),
]


@pytest.mark.parametrize("text, winner, reason, reward", AGREEMENT)
def test_the_filter_and_both_rewards_agree(text, winner, reason, reward):
    assert check_trace(text, winner).reason == reason
    assert compute_score("rubricforge/x", text, winner, {}) == reward
    # TRL passes message lists for a conversational prompt, strings otherwise
    assert trl_reward([[{"role": "assistant", "content": text}]], [winner]) == [reward]
    assert trl_reward([text], [winner]) == [reward]
    if reason == "":
        assert reward == 1.0  # what SFT teaches, RL pays


def test_trl_reward_scores_each_completion_against_its_own_row():
    texts = [CHAT, CHAT, REASONING]
    assert trl_reward(texts, ["model_a", "model_b", "model_b"], prompts=None) == [1.0, -1.0, 1.0]
    with pytest.raises(ValueError):
        trl_reward(texts, ["model_a"])


def test_every_text_the_grammar_allows_is_well_formed():
    rx = re.compile(trace_regex())
    assert rx.fullmatch(CHAT) and rx.fullmatch(REASONING)
    assert not rx.fullmatch(CHAT + " extra")
    assert not rx.fullmatch(CHAT.replace("<justify>", ""))

"""The verdict rule and the trace format check, including texts written to fool them."""

from __future__ import annotations

import re

import pytest

from pipeline.rules.trace_checks import Evidence, check_trace
from pipeline.rules.verdict import compute_score, score, trace_regex, trl_reward, verdict_of
from pipeline.settings import load_config

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
    chat = CHAT.replace("<quote_A>Canberra</quote_A>", "<summary_A>Canberra</summary_A>")
    reasoning = REASONING.replace("quote_", "summary_")
    assert rx.fullmatch(chat) and rx.fullmatch(reasoning)
    assert check_trace(chat, "model_a").reason == check_trace(reasoning, "model_b").reason == ""
    assert not rx.fullmatch(chat + " extra")
    assert not rx.fullmatch(chat.replace("<justify>", ""))
    assert not rx.fullmatch(chat.replace("Facts matter most here.", "..."))
    # a model held to it cites with summaries: it cannot invent an "exact" quote
    assert not rx.fullmatch(CHAT)


# -- substance: a trace that copies the prompt or invents its evidence is no judgement ---------

ANSWERS = ("The capital of Australia is Canberra, chosen in 1908.",
           "The capital of Australia is Sydney, its largest city.")
INSTRUCTIONS = load_config([]).prompt.system
# an RM-R1-style trace: long rubric, several quotes with ellipses and quote marks, multi-line
RM_R1_STYLE = """<type>Chat</type>
<rubric>
1. Factual accuracy (70%): the capital must be named correctly.
2. Helpful context (30%): a short reason or history helps the client remember.
<justify>The request is a factual question, so correctness dominates; context is secondary.</justify>
</rubric>
<eval>
Chatbot A states <quote_A>"The capital of Australia is   Canberra, ..., chosen in 1908."</quote_A>
which is correct and adds the year. Chatbot B claims <quote_B>\u201cThe capital of Australia is
Sydney\u201d</quote_B>; <summary_B>it confuses the largest city with the capital</summary_B>.
</eval>
<answer>[[A]]</answer>"""


def check(text, winner="model_a"):
    return check_trace(text, winner, Evidence(ANSWERS), INSTRUCTIONS)


def test_good_traces_with_real_evidence_pass_the_substance_checks():
    assert check(RM_R1_STYLE).reason == ""
    # quotes repeat the answers on purpose: long ones do not make a trace repetitive
    long_a = " ".join(["The capital of Australia is Canberra, chosen in 1908."] * 3)
    quoted = RM_R1_STYLE.replace('"The capital of Australia is   Canberra, ..., chosen in 1908."',
                                 long_a + " ... " + long_a)
    assert check_trace(quoted, "model_a", Evidence((long_a, ANSWERS[1])), INSTRUCTIONS).reason == ""
    grounded = CHAT.replace("<quote_A>Canberra</quote_A>", "<quote_A>Canberra, chosen</quote_A>")
    assert check(grounded).reason == ""
    assert check(RM_R1_STYLE, "model_b").reason == "wrong_verdict"


@pytest.mark.parametrize("edit, reason, detail", [
    # the old layout example, copied: placeholders instead of evidence
    (lambda t: t.replace("<quote_B>", "<quote_B>...").replace("\u201cThe capital of Australia is\n"
     "Sydney\u201d", ""), "template_copy", "<quote_B> holds no words"),
    (lambda t: t.replace("The request is a factual question, so correctness dominates; context "
                         "is secondary.", " ... "), "template_copy", "<justify> holds no words"),
    (lambda t: t.replace("1. Factual accuracy", "Work the problem out yourself inside before "
                         "you assess the answers. 1. Factual accuracy"),
     "template_copy", "repeats the instructions"),
    # a loop: the same lines in every field (what the 135M teacher writes under the grammar)
    (lambda t: t.replace("Chatbot A states", "The answer is 1. " * 30 + "Chatbot A states"),
     "repetitive", "4-word sequences are distinct"),
    # evidence that is not in the answer it cites (or is in the other one)
    (lambda t: t.replace("chosen in 1908", "chosen in 1927"), "misquote", "<quote_A>"),
    (lambda t: t.replace("<quote_B>\u201cThe capital of Australia is\nSydney\u201d</quote_B>",
                         "<quote_B>Canberra, chosen in 1908</quote_B>"), "misquote", "<quote_B>"),
])
def test_copies_and_invented_quotes_are_rejected(edit, reason, detail):
    text = edit(RM_R1_STYLE)
    assert text != RM_R1_STYLE
    got = check(text)
    assert got.reason == reason and detail in got.detail, got
    # the RL reward reads only the verdict: it does not see substance
    assert compute_score("rubricforge/x", text, "model_a", {}) == 1.0


def test_the_prompt_shows_no_single_verdict_and_no_placeholder_to_copy():
    """The verdict appears only as the choice between both tags; the layout has no "..." or
    example text a model could reproduce."""
    assert INSTRUCTIONS.count("<answer>[[A]]</answer>") == INSTRUCTIONS.count(
        "<answer>[[B]]</answer>") == 1
    tail = INSTRUCTIONS[INSTRUCTIONS.index("<answer>[[A]]</answer>"):]
    assert "<answer>[[B]]</answer>" in tail.splitlines()[0] + tail.splitlines()[1]
    assert "..." not in INSTRUCTIONS and "\u2026" not in INSTRUCTIONS
    assert check_trace(INSTRUCTIONS, "model_a", Evidence(ANSWERS), INSTRUCTIONS).reason != ""


# -- quotes as real judges write them: typeset differently, never invented --------------------

LISTED = ("Try these steps:\n\n* **Sign Out and Back In:**\n    * Sign out of your account.\n"
          "    * Restart your computer.\n\n1. Check the *status* page ([https://status.example]"
          "(https://status.example)) for outages.\n2. Delete any characters before \"https://x.\"")


@pytest.mark.parametrize("quote", [
    "Sign out and back in: Sign out of your account. Restart your computer.",  # bold, bullets, case
    "\u201cCheck the status page for outages.\u201d",  # emphasis and the link target dropped
    "Check the *status* page ([https://status.example](https://status.example)) for outages.",
    "delete any characters before 'https://x.'",  # quote-mark style
    "Try these steps: ... Restart your computer.",  # elided with an ellipsis
    "Try these steps: Check the status page",  # joined across skipped lines, no ellipsis
    "1. Check the status page for outages. 2. Delete any characters",  # list numbers flattened
])
def test_quotes_typeset_differently_are_the_answers_words(quote):
    trace = CHAT.replace("<quote_A>Canberra</quote_A>", f"<quote_A>{quote}</quote_A>")
    got = check_trace(trace, "model_a", Evidence((LISTED, ANSWERS[1])), INSTRUCTIONS)
    assert (got.reason, got.quote_fidelity) == ("", 1.0)


@pytest.mark.parametrize("quote, fidelity", [
    ("Sign out of your account. Restart your router.", 7 / 8),  # one word changed
    ("Sign out of your account. Restart computer.", 6 / 7),  # one word dropped
    ("Check the status page now for outages.", 6 / 7),  # one word added
    ("Sign out of your Google account [sic]. Restart your computer.", 8 / 9),  # an editorial mark
])
def test_one_word_dropped_changed_or_added_costs_that_word_not_the_quote(quote, fidelity):
    trace = CHAT.replace("<quote_A>Canberra</quote_A>", f"<quote_A>{quote}</quote_A>")
    got = check_trace(trace, "model_a", Evidence((LISTED, ANSWERS[1])), INSTRUCTIONS)
    assert got.reason == "" and got.quote_fidelity == pytest.approx(fidelity, abs=1e-4), got


@pytest.mark.parametrize("quote, detail", [
    ("Sign out of your account ... Never restart your computer.", "adds the negation 'never'"),
    ("Sign out of your account. Do not restart your computer.", "adds the negation 'not'"),
    ("Check the status page for 3 outages.", "the number '3'"),
    ("Restart your computer. Sign out of your account. Buy a new laptop today.",
     "62% of its words"),  # an invented sentence beside real ones
    ("The capital of Australia is Sydney", "is Chatbot B's answer's text"),
    ("Which city is the capital of Australia?", "is the question's text"),
])
def test_a_quote_that_invents_evidence_is_a_misquote(quote, detail):
    trace = CHAT.replace("<quote_A>Canberra</quote_A>", f"<quote_A>{quote}</quote_A>")
    question = "Which city is the capital of Australia? Answer in one line."
    got = check_trace(trace, "model_a", Evidence((LISTED, ANSWERS[1]), question), INSTRUCTIONS)
    assert got.reason == "misquote" and "<quote_A>" in got.detail and detail in got.detail, got


def test_the_threshold_is_a_setting():
    trace = CHAT.replace("<quote_A>Canberra</quote_A>",
                         "<quote_A>Sign out of your account. Restart your router.</quote_A>")
    shown = Evidence((LISTED, ANSWERS[1]))
    assert check_trace(trace, "model_a", shown, INSTRUCTIONS, min_fidelity=0.85).reason == ""
    strict = check_trace(trace, "model_a", shown, INSTRUCTIONS, min_fidelity=0.9)
    assert strict.reason == "misquote" and "88% of its words" in strict.detail
    assert strict.quote_fidelity == 0.875


@pytest.mark.parametrize("winner, right", [("model_a", "A"), ("A", "A"), ("model_b", "B"),
                                           ("B", "B")])
def test_score_reads_the_winner_in_both_spellings(winner, right):
    """`model_a`/`model_b` (the data's winner) and `A`/`B` (a verdict label) name the same side."""
    wrong = {"A": "B", "B": "A"}[right]
    assert score(f"<answer>[[{right}]]</answer>", winner) == 1
    assert score(f"<answer>[[{wrong}]]</answer>", winner) == -1
    assert compute_score("x", f"<answer>[[{wrong}]]</answer>", winner) == -1.0


def test_check_response_turns_away_failed_and_cut_answers_before_reading_them():
    """A failed call, a call the cost cap held back and an answer cut at max_tokens are never
    judged as traces, even when their text would pass."""
    from pipeline.rules.trace_checks import check_response
    from pipeline.rules.verdict import COST_CAP

    assert check_response(CHAT, "model_a").reason == ""
    assert check_response(CHAT, "model_a", finish_reason="length").reason == "truncated"
    assert check_response(CHAT, "model_a", finish_reason="stop").reason == ""
    assert check_response(CHAT, "model_a", error="HTTP 500").reason == "teacher_error"
    assert check_response(None, "model_a", error=f"{COST_CAP}: not sent").reason == COST_CAP


@pytest.mark.parametrize("side", ["A", "B"])
def test_the_evaluation_must_cite_both_chatbots(side):
    other = {"A": "B", "B": "A"}[side]
    text = (f"<type>Chat</type>\n<rubric>Accuracy<justify>Facts.</justify>\n</rubric>\n"
            f"<eval><summary_{side}>says Canberra</summary_{side}> and nothing of the other."
            f"</eval>\n<answer>[[A]]</answer>")
    got = check_trace(text, "model_a")
    assert (got.reason, got.detail) == ("bad_format", f"<eval> cites nothing of Chatbot {other}")

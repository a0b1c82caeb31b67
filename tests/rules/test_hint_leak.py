"""The hint-leak rule of pass 2: what leans on the hint, and ordinary judging words that do not."""

from __future__ import annotations

import pytest

from pipeline.rules.hint_leak import hint_leak
from pipeline.rules.templates import fill
from pipeline.settings import load_config

from judged import trace


@pytest.mark.parametrize("text", [
    "As the hint says, B is better.", "We were told that B wins.", "The correct verdict is B.",
    "The reference label says B.", "My previous evaluation was wrong.",
    "Unlike the initial assessment, B is right.", "On second thought, B.",
    "My first verdict was hasty.", "The earlier analysis missed the units.",
    "Let me re-evaluate the responses.", "Reconsidering both answers, B wins.",
    "I made a mistake before.", "the better response is Chatbot B. Write a new, complete evaluation",
])
def test_hint_leaks_are_caught(text):
    hint = fill(load_config([]).prompt.hint, {"label": "B"})
    assert hint_leak(trace("B", note=text), hint)


@pytest.mark.parametrize("text", [
    "The correct answer is 12, and only Chatbot A gets 12.", "The first response is longer.",
    "In the previous turn the user asked for brevity.", "Chatbot A urges the client to reconsider.",
    "B evaluates the integral correctly.", "The user's earlier question was about Python.",
    "The first evaluation criterion is accuracy.", "As the above analysis shows, A is right.",
    "Chatbot A's initial assessment of the bug is wrong.",
])
def test_ordinary_judging_words_are_not_leaks(text):
    hint = fill(load_config([]).prompt.hint, {"label": "B"})
    assert hint_leak(trace("B", note=text), hint) is None

"""Validation quarantines each kind of bad pair with its own reason and passes good ones."""

from __future__ import annotations

import pytest

from stages.validate import problem

from conftest import messages

Q = messages(("user", "What is 2 + 2?"))
GOOD = messages(("assistant", "4"))
BAD = messages(("assistant", "5"))


def pair(prompt=Q, chosen=GOOD, rejected=BAD):
    return {"prompt": prompt, "chosen": chosen, "rejected": rejected}


def test_good_pair_passes():
    assert problem(pair(), 1000) is None


@pytest.mark.parametrize("row, reason", [
    (pair(prompt=[]), "empty_field"),
    (pair(chosen=messages(("assistant", "   "))), "empty_field"),
    (pair(rejected=None), "empty_field"),
    (pair(chosen=messages(("bot", "4"))), "bad_role"),
    (pair(chosen=[{"role": "assistant", "content": 4}]), "bad_type"),
    (pair(prompt=messages(("user", "\x00\x00\x00"))), "empty_field"),
    (pair(chosen=messages(("assistant", "\u200b\x07 \n"))), "empty_field"),
    (pair(prompt=messages(("user", "q"), ("assistant", "a"))), "prompt_not_ending_with_user"),
    (pair(chosen=messages(("user", "4"))), "last_turn_not_assistant"),
    (pair(rejected=messages(("assistant", "4 "))), "identical_answers"),
    (pair(chosen=messages(("assistant", "x" * 2000))), "too_long"),
])
def test_reasons(row, reason):
    found = problem(row, 1000)
    assert found is not None and found[0] == reason


@pytest.mark.parametrize("roles", [
    ("user",), ("system", "user"), ("user", "assistant", "user"),
    ("system", "user", "assistant", "user", "assistant", "user")])
def test_alternating_prompts_pass(roles):
    assert problem(pair(prompt=messages(*[(r, f"turn {i}") for i, r in enumerate(roles)])),
                   1000) is None


@pytest.mark.parametrize("roles, detail", [
    (("user", "assistant", "assistant", "user"), "prompt[2].role='assistant' follows 'assistant'"),
    (("user", "user"), "prompt[1].role='user' follows 'user'"),
    (("assistant", "user"), "prompt[0].role='assistant' follows 'the start'"),
    (("system", "assistant", "user"), "prompt[1].role='assistant' follows 'system'"),
    (("user", "system", "user"), "prompt[1].role='system' after the first turn"),
])
def test_prompts_whose_roles_do_not_alternate_are_bad_role_with_the_position(roles, detail):
    found = problem(pair(prompt=messages(*[(r, f"turn {i}") for i, r in enumerate(roles)])), 1000)
    assert found is not None and found[0] == "bad_role" and found[1].startswith(detail), found

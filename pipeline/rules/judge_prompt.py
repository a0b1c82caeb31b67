"""The judge's chat, written one way for every stage that asks a judge: render (the prompt kept
in the data), the swapped-order check, and pass 2 (the prompt plus a hint, never kept).

Both sides go through the same function with only the letter changed, so nothing but the
content tells Chatbot A from Chatbot B.
"""

from __future__ import annotations

from typing import Any

from pipeline.rules.templates import fill
from pipeline.rules.trace_checks import Evidence
from pipeline.rules.verdict import SWAPPED

Messages = list[dict[str, str]]


def conversation(messages: Messages, letter: str) -> str:
    names = {"user": "User", "assistant": f"Chatbot {letter}", "system": "System"}
    return "\n\n".join(f"{names[m['role']]}: {m['content']}" for m in messages)


def judge_messages(prompt: Messages, answer_a: str, answer_b: str, templates: Any) -> Messages:
    """The judge's chat: system prompt plus one user turn holding the question and both sides."""
    if len(prompt) == 1 and prompt[0]["role"] == "user":
        user = fill(templates.single_turn, {"question": prompt[0]["content"],
                                            "answer_a": answer_a, "answer_b": answer_b})
    else:
        user = fill(templates.multi_turn, {
            "conversation_a": conversation([*prompt, {"role": "assistant", "content": answer_a}], "A"),
            "conversation_b": conversation([*prompt, {"role": "assistant", "content": answer_b}], "B"),
        })
    return [{"role": "system", "content": templates.system}, {"role": "user", "content": user}]


def placed(row: dict[str, Any], winner: str) -> tuple[str, str]:
    """The two answers as Chatbot A and B, with the chosen one where `winner` says."""
    good, bad = row["chosen"][0]["content"], row["rejected"][0]["content"]
    return (good, bad) if winner == "model_a" else (bad, good)


def swapped_messages(row: dict[str, Any], templates: Any) -> Messages:
    """The judge's chat with A and B swapped: one request for the swap check and the label
    audit, so the cache answers the second with the first's answer."""
    a, b = placed(row, SWAPPED[row["winner"]])
    return judge_messages(row["prompt"], a, b, templates)


def evidence(row: dict[str, Any], winner: str) -> Evidence:
    """What a judge shown this pair may quote: each chatbot's side of its conversation (its
    earlier turns, then its answer, placed where `winner` says) and the client's turns."""
    earlier = "\n".join(m["content"] for m in row["prompt"] if m["role"] == "assistant")
    a, b = placed(row, winner)
    return Evidence((f"{earlier}\n{a}" if earlier else a, f"{earlier}\n{b}" if earlier else b),
                    "\n".join(m["content"] for m in row["prompt"] if m["role"] == "user"))


def hinted_messages(judge: Messages, flawed_trace: str | None, label: str, templates: Any) -> Messages:
    """Pass 2's request: the judge prompt, the flawed first judgement (when there is one), and
    the correct verdict as a hint. Only the teacher sees this; the data keeps `judge`."""
    hint = fill(templates.hint, {"label": label})
    turns = [{"role": "assistant", "content": flawed_trace}] if flawed_trace else []
    return [*judge, *turns, {"role": "user", "content": hint}]


def question_of(prompt: Messages) -> str:
    """The client's request as one text (RewardBench 2's prompts are one user turn)."""
    if len(prompt) == 1:
        return prompt[0]["content"]
    return conversation(prompt, "")


def best_of_four_messages(prompt: Messages, answers: list[str], templates: Any) -> Messages:
    """Four answers at once, as Chatbot A to D in the given order."""
    user = fill(templates.best_of_four, {"question": question_of(prompt),
                                         **{f"answer_{x}": a for x, a in zip("abcd", answers,
                                                                              strict=True)}})
    return [{"role": "system", "content": templates.best_of_four_system},
            {"role": "user", "content": user}]


def rating_messages(prompt: Messages, answer: str, templates: Any, ties: bool) -> Messages:
    """One answer to rate from 1 to 10; `ties`: with the Ties subset's criteria."""
    criteria = templates.rating_criteria_ties if ties else templates.rating_criteria
    return [{"role": "system", "content": fill(templates.rating_system, {"criteria": criteria})},
            {"role": "user", "content": fill(templates.rating, {"question": question_of(prompt),
                                                                "answer": answer})}]

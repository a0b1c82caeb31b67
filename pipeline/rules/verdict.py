"""The one verdict rule: the distillation filter (pipeline/rules/trace_checks.py) and the RL
reward both call this module.

RM-R1's RL reward gives +1 when the last 80 characters of the judge's output contain
`<answer>[[X]]</answer>` for the correct X and not the other verdict's tag. The filter keeps
only traces this rule scores +1, so SFT never teaches what RL punishes.

The trainers load this file as it is: verl by path (`reward.custom_reward_function.path`), TRL
by import (`trl_reward`). It imports only the standard library, and it has no
`from __future__ import annotations`: verl executes the file without registering it in
`sys.modules`, and a dataclass with string annotations cannot be created that way
(tests/test_trainers.py loads it through verl's own loader).
"""

from collections.abc import Sequence
from typing import Any

TAIL_CHARS = 80
TAGS = {"A": "<answer>[[A]]</answer>", "B": "<answer>[[B]]</answer>"}
WINNER_TO_LABEL = {"model_a": "A", "model_b": "B", "A": "A", "B": "B"}
# The winner's place with Chatbot A and B swapped.
SWAPPED = {"model_a": "model_b", "model_b": "model_a"}
# The reason of rows whose request was not sent because the teacher's cost cap was reached
# (teacher errors start with it). Defined here so this file stays importable on its own by verl.
COST_CAP = "cost_cap"


def verdict_of(text: str | None) -> str | None:
    """'A' or 'B' when exactly one verdict tag stands in the last 80 characters, else None."""
    return one_tag(text, TAGS)


def one_tag(text: str | None, tags: dict) -> str | None:
    """The label of the one tag of `tags` (label -> tag) in the last 80 characters, else None."""
    if not text:
        return None
    tail = text[-TAIL_CHARS:]
    found = [label for label, tag in tags.items() if tag in tail]
    return found[0] if len(found) == 1 else None


def score(text: str | None, winner: str) -> int:
    """+1 when the trace's verdict names the winner (`model_a`/`model_b` or `A`/`B`), else -1."""
    return 1 if verdict_of(text) == WINNER_TO_LABEL[winner] else -1


def compute_score(data_source: str, solution_str: str, ground_truth: str,
                  extra_info: dict | None = None) -> float:
    """verl's reward: `reward.custom_reward_function.path=<this file>`,
    `reward.custom_reward_function.name=compute_score`; `ground_truth` is the `rl` part's
    `reward_model.ground_truth` (the winner)."""
    return float(score(solution_str, ground_truth))


def trl_reward(completions: Sequence[Any], winner: Sequence[str], **_: Any) -> list[float]:
    """TRL's GRPOTrainer reward (`reward_funcs=[trl_reward]`): TRL passes the generated
    completions (message lists for a conversational `prompt`, else strings) and every other
    dataset column as a list, here the `rl` part's `winner`."""
    return [float(score(_completion_text(c), w)) for c, w in zip(completions, winner, strict=True)]


def _completion_text(completion: Any) -> str:
    """A completion's text: a string as it is, a message list's last message's content."""
    if isinstance(completion, str):
        return completion
    return completion[-1]["content"] if completion else ""


# -- format of a Chain-of-Rubrics trace ---------------------------------------------------------


def trace_regex(max_field_chars: int = 120) -> str:
    """A regular grammar of well-formed traces, for engines that constrain decoding (vLLM).

    It is for small models that cannot follow the layout on their own (the embedded 135M
    teacher). Held to it, a model still chooses every word and the verdict; it only cannot
    break the layout. Fields exclude '<' so a field cannot open or close a tag, and have a
    letter or digit early on, so a field of dots (a copied "...") cannot be written. The
    evaluation cites each chatbot with a summary: such a model invents its "exact" quotes
    (`misquote`), and a grammar cannot know the answers' text. Fields are short enough that a
    whole trace fits the local teacher's max_tokens.
    """
    f = rf"[^<A-Za-z0-9]{{0,8}}[A-Za-z0-9][^<]{{0,{max_field_chars - 1}}}"
    cite = rf"<summary_A>{f}</summary_A>({f})?<summary_B>{f}</summary_B>"
    evaluation = rf"<eval>({f})?{cite}({f})?</eval>"
    chat = rf"<type>Chat</type>\n<rubric>{f}<justify>{f}</justify>\n</rubric>\n"
    reasoning = rf"<type>Reasoning</type>\n<solution>{f}</solution>\n"
    return rf"({chat}|{reasoning}){evaluation}\n<answer>\[\[(A|B)\]\]</answer>"

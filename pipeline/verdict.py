"""The one verdict rule: the distillation filter and the RL reward both call this module.

RM-R1's RL reward gives +1 when the last 80 characters of the judge's output contain
`<answer>[[X]]</answer>` for the correct X and not the other verdict's tag. The filter keeps
only traces this rule scores +1, so SFT never teaches what RL punishes.

The trainers load this file as it is: verl by path (`reward.custom_reward_function.path`), TRL
by import (`trl_reward`). It imports only the standard library, and it has no
`from __future__ import annotations`: verl executes the file without registering it in
`sys.modules`, and a dataclass with string annotations cannot be created that way
(tests/test_trainers.py loads it through verl's own loader).
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

TAIL_CHARS = 80
TAGS = {"A": "<answer>[[A]]</answer>", "B": "<answer>[[B]]</answer>"}
WINNER_TO_LABEL = {"model_a": "A", "model_b": "B", "A": "A", "B": "B"}
# The reason of rows whose request was not sent because the teacher's cost cap was reached
# (teacher errors start with it). Defined here so this file stays importable on its own by verl.
COST_CAP = "cost_cap"


def verdict_of(text: str | None) -> str | None:
    """'A' or 'B' when exactly one verdict tag stands in the last 80 characters, else None."""
    if not text:
        return None
    tail = text[-TAIL_CHARS:]
    found = [label for label, tag in TAGS.items() if tag in tail]
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


def trace_regex(max_field_chars: int = 200) -> str:
    """A regular grammar of well-formed traces, for engines that constrain decoding (vLLM).

    A small model held to it still chooses every word and the verdict; it only cannot break
    the layout. Fields exclude '<' so a field cannot open or close a tag.
    """
    f = rf"[^<]{{1,{max_field_chars}}}"
    a, b = (rf"(<quote_{x}>{f}</quote_{x}>|<summary_{x}>{f}</summary_{x}>)" for x in "AB")
    cite = rf"{a}({f})?{b}"
    evaluation = rf"<eval>({f})?{cite}({f})?</eval>"
    chat = rf"<type>Chat</type>\n<rubric>{f}<justify>{f}</justify>\n</rubric>\n"
    reasoning = rf"<type>Reasoning</type>\n<solution>{f}</solution>\n"
    return rf"({chat}|{reasoning}){evaluation}\n<answer>\[\[(A|B)\]\]</answer>"


_TYPE = re.compile(r"\A\s*<type>(Chat|Reasoning)</type>")


@dataclass(frozen=True)
class TraceCheck:
    """Why a trace is or is not usable; `reason` is empty for a good trace."""

    reason: str
    detail: str = ""
    verdict: str | None = None
    task_type: str | None = None


def _in_order(text: str, start: int, tags: list[str]) -> tuple[int, str | None]:
    """Find tags in sequence from `start`; return the end position or the first missing tag."""
    pos = start
    for tag in tags:
        found = text.find(tag, pos)
        if found < 0:
            return pos, tag
        pos = found + len(tag)
    return pos, None


def check_trace(text: str | None, winner: str) -> TraceCheck:
    """Apply the verdict rule, then the format contract of DESIGN.md section 3."""
    if not text or not text.strip():
        return TraceCheck("empty_trace")
    tail = text[-TAIL_CHARS:]
    present = [label for label, tag in TAGS.items() if tag in tail]
    if not present:
        return TraceCheck("no_verdict", "no <answer>[[A]]/[[B]]</answer> in the last 80 characters")
    if len(present) > 1:
        return TraceCheck("ambiguous_verdict", "both verdict tags in the last 80 characters")
    verdict = present[0]
    m = _TYPE.match(text)
    if not m:
        return TraceCheck("bad_format", "does not start with <type>Chat</type> or "
                          "<type>Reasoning</type>", verdict)
    kind = m.group(1)
    body = ["<rubric>", "<justify>", "</justify>", "</rubric>"] if kind == "Chat" else [
        "<solution>", "</solution>"]
    pos, missing = _in_order(text, m.end(), [*body, "<eval>"])
    if missing:
        return TraceCheck("bad_format", f"{kind} trace lacks {missing} in order", verdict, kind)
    eval_end = text.rfind("</eval>")
    if eval_end < pos:
        return TraceCheck("bad_format", "no </eval> after <eval>", verdict, kind)
    evaluation = text[pos:eval_end]
    for side in ("A", "B"):
        if not any(f"<{t}_{side}>" in evaluation and f"</{t}_{side}>" in evaluation
                   for t in ("quote", "summary")):
            return TraceCheck("bad_format", f"<eval> cites nothing of Chatbot {side}", verdict, kind)
    if not text.rstrip().endswith(TAGS[verdict]):
        return TraceCheck("bad_format", "text after the verdict", verdict, kind)
    if text.find("<answer>", eval_end) != text.rstrip().rfind("<answer>"):
        return TraceCheck("bad_format", "more than one <answer> after </eval>", verdict, kind)
    if score(text, winner) != 1:
        return TraceCheck("wrong_verdict", f"said {verdict}, winner is "
                          f"{WINNER_TO_LABEL[winner]}", verdict, kind)
    return TraceCheck("", "", verdict, kind)


def check_response(trace: str | None, winner: str, error: str | None = None,
                   finish_reason: str | None = None) -> TraceCheck:
    """The filter's whole decision on one teacher answer: failed calls, truncation, then the
    verdict rule and the format. Pass 1, pass 2 and the swapped-order check all use it."""
    if error:
        return TraceCheck(COST_CAP if error.startswith(COST_CAP) else "teacher_error", error)
    if finish_reason == "length":
        return TraceCheck("truncated", "hit the teacher's max_tokens")
    return check_trace(trace, winner)

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
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
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


_TYPE = re.compile(r"\A\s*<type>(Chat|Reasoning)</type>")
# Nothing may follow the verdict but white space and repeated closing tags: RM-R1's 32B judges
# end 6% of their traces with a stray `</answer>` (35 of 590 in their released logs, all with
# the right verdict). The verdict rule still reads the tag in the last 80 characters and scores
# those +1, so rejecting them would pay for traces RL rewards and throw them away.
_ENDS_WITH = {label: re.compile(re.escape(tag) + r"(?:\s*</answer>)*\s*\Z")
              for label, tag in TAGS.items()}


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


# -- substance: a trace must judge these two answers, not reproduce the prompt ----------------

FIELDS = ("rubric", "justify", "solution", "eval", "quote_A", "quote_B", "summary_A", "summary_B")
_TAG = re.compile(r"</?[A-Za-z_]+>")
_WORD = re.compile(r"\w+")
# A run of this many words of the judge's instructions inside a trace is a copy, not a thought.
COPY_WORDS = 8
# Where a quote may join excerpts that are not adjacent in the answer: an ellipsis, a sentence
# end or a line break (judges join list items and sentences they skip between).
_PIECES = re.compile(r"\.\.\.|\u2026|(?<=[.!?:;])\s+|\n")
# Letters and digits only: markdown emphasis, list bullets, quote-mark style and punctuation
# are how an excerpt is typeset, not what it says.
_TOKEN = re.compile(r"[^\W_]+")


def _words(text: str) -> list[str]:
    return [w.casefold() for w in _WORD.findall(text)]


@lru_cache(maxsize=8)
def _instruction_runs(instructions: str) -> frozenset[tuple[str, ...]]:
    """Every run of COPY_WORDS words of the instructions: one build has one or two prompts,
    and every trace of it is checked against them."""
    own = _words(_TAG.sub(" ", instructions))
    return frozenset(tuple(own[i:i + COPY_WORDS]) for i in range(len(own) - COPY_WORDS + 1))


def _copied(text: str, instructions: str) -> str | None:
    """The first run of COPY_WORDS words of `instructions` that `text` repeats, else None."""
    grams = _instruction_runs(instructions)
    words = _words(_TAG.sub(" ", text))
    for i in range(len(words) - COPY_WORDS + 1):
        if tuple(words[i:i + COPY_WORDS]) in grams:
            return " ".join(words[i:i + COPY_WORDS])
    return None


# Below this share of distinct 4-word sequences (quotes left out: they repeat the answers on
# purpose), a trace of REPEAT_MIN_WORDS words or more is a loop, not a judgement.
REPEAT_DISTINCT = 0.5
REPEAT_MIN_WORDS = 40
_QUOTE = re.compile(r"<quote_[AB]>.*?</quote_[AB]>", re.S)


def _distinct_share(text: str, n: int = 4) -> tuple[float, int]:
    """Share of the distinct n-word sequences of `text` outside quotes, and its word count."""
    words = _words(_TAG.sub(" ", _QUOTE.sub(" ", text)))
    grams = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
    return (len(set(grams)) / len(grams) if grams else 1.0), len(words)


def _tokens(text: str) -> str:
    """The words of `text`, case-folded, one space apart: what a quote must reproduce."""
    return " ".join(_TOKEN.findall(unicodedata.normalize("NFKC", text).casefold()))


# A link's target, and a bare address: judges quote the sentence around a link without it.
_LINK_TARGET = re.compile(r"\]\([^)\s]*\)|\bhttps?://\S+|\bwww\.\S+")


@lru_cache(maxsize=64)
def _answer_tokens(answer: str) -> tuple[str, str]:
    """An answer's words, as written and without link targets (a trace quotes the same answer
    several times, and the swap check quotes it again)."""
    return _tokens(answer), _tokens(_LINK_TARGET.sub(" ", answer))


def _misquote(text: str, answers: tuple[str, str]) -> str | None:
    """A <quote_X> excerpt whose words are not, in order, in Chatbot X's answer.

    An excerpt is compared word for word, ignoring case, punctuation, markdown emphasis, list
    markers, quote-mark style, white space and link targets, and may be several pieces of the answer joined at
    an ellipsis, a sentence end or a line break: real judges quote that way (calibrated on
    RM-R1's released traces, tests/data/traces). A word the answer does not have in that place,
    in any piece, is invented evidence."""
    for side, answer in zip("AB", answers, strict=True):
        bodies = _answer_tokens(answer)
        for quote in re.findall(rf"<quote_{side}>(.*?)</quote_{side}>", text, re.S):
            for piece in _PIECES.split(quote):
                words = _tokens(piece)
                if words and not any(words in body for body in bodies):
                    shown = " ".join(piece.split())
                    return f"<quote_{side}> {shown[:60]!r} is not in Chatbot {side}'s answer"
    return None


def substance_problem(text: str, answers: tuple[str, str] | None = None,
                      instructions: str = "") -> tuple[str, str] | None:
    """Why a well-formed trace is still no judgement, as (reason, detail), or None:
    `template_copy` for a field with no content or a run of the instructions' own words,
    `repetitive` for a text that loops over the same words (a small model's failure, seen in
    the embedded teacher's traces), `misquote` for an excerpt its answer does not contain."""
    for tag in FIELDS:  # one tag at a time: <justify> sits inside <rubric>, quotes inside <eval>
        for body in re.findall(rf"<{tag}>(.*?)</{tag}>", text, re.S):
            if not _WORD.search(_TAG.sub(" ", body)):
                return "template_copy", f"<{tag}> holds no words of its own"
    copy = _copied(text, instructions) if instructions else None
    if copy:
        return "template_copy", f"repeats the instructions: {copy!r}"
    share, words = _distinct_share(text)
    if words >= REPEAT_MIN_WORDS and share < REPEAT_DISTINCT:
        return "repetitive", (f"only {share:.0%} of its 4-word sequences are distinct: it "
                              f"repeats itself instead of comparing")
    quote = _misquote(text, answers) if answers is not None else None
    return ("misquote", quote) if quote else None


def check_trace(text: str | None, winner: str, answers: tuple[str, str] | None = None,
                instructions: str = "") -> TraceCheck:
    """Apply the verdict rule, the format contract of DESIGN.md section 3, and, given the two
    answers as placed (A, B) and the judge's instructions, the substance checks."""
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
    if not _ENDS_WITH[verdict].search(text):
        return TraceCheck("bad_format", "text after the verdict", verdict, kind)
    if text.find("<answer>", eval_end) != text.rfind("<answer>"):
        return TraceCheck("bad_format", "more than one <answer> after </eval>", verdict, kind)
    problem = substance_problem(text, answers, instructions)
    if problem:
        return TraceCheck(*problem, verdict, kind)
    if score(text, winner) != 1:
        return TraceCheck("wrong_verdict", f"said {verdict}, winner is "
                          f"{WINNER_TO_LABEL[winner]}", verdict, kind)
    return TraceCheck("", "", verdict, kind)


def check_response(trace: str | None, winner: str, error: str | None = None,
                   finish_reason: str | None = None, answers: tuple[str, str] | None = None,
                   instructions: str = "") -> TraceCheck:
    """The filter's whole decision on one teacher answer: failed calls, truncation, then the
    verdict rule, the format and the substance. Pass 1, pass 2 and the swapped-order check all
    use it."""
    if error:
        return TraceCheck(COST_CAP if error.startswith(COST_CAP) else "teacher_error", error)
    if finish_reason == "length":
        return TraceCheck("truncated", "hit the teacher's max_tokens")
    return check_trace(trace, winner, answers, instructions)

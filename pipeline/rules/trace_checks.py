"""Whether a teacher's trace is one SFT may teach: the verdict rule (the RL reward's), the
Chain-of-Rubrics layout of DESIGN.md section 3, and its substance, which is that it judges these
two answers: evidence that is theirs, nothing copied from the instructions, no loop.

The filter, pass 2 and the swapped-order check all decide with `check_response`. Every check
turns away a trace that was paid for, so each is aimed at a flaw, not at a style: the quote check
measures invented evidence (pipeline/rules/quotes.py), not exact copying. Calibrated on real
judges' traces and written cases of each shape (tests/data/traces, bench/trace_checks.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from pipeline.rules.quotes import Fidelity, fidelity
from pipeline.rules.verdict import COST_CAP, TAGS, TAIL_CHARS, WINNER_TO_LABEL, score

_TYPE = re.compile(r"\A\s*<type>(Chat|Reasoning)</type>")
# Nothing may follow the verdict but white space and closing tags: strong judges close a tag
# the verdict already ended (RM-R1's 32B judge writes a stray `</answer>` in 6% of its released
# traces, 35 of 590, all with the right verdict; others close `</eval>` after the verdict). The
# RL rule still reads the tag in the last 80 characters and scores those +1, so rejecting them
# would pay for traces RL rewards and throw them away.
_CLOSERS = r"(?:\s*</(?:answer|eval)>)*\s*\Z"
_ENDS_WITH = {label: re.compile(re.escape(tag) + _CLOSERS) for label, tag in TAGS.items()}

# The lowest share of a quote's words, in order, that must be in the answer it cites. One word
# changed in a four-word quote is 0.75; an invented sentence is below 0.3 (bench/trace_checks.py).
MIN_QUOTE_FIDELITY = 0.7
# A quote is taken from elsewhere when at least this share of its words is in the other answer
# or the question, and more than in the answer it cites.
ELSEWHERE_SHARE = 0.5


@dataclass(frozen=True)
class TraceCheck:
    """Why a trace is or is not usable; `reason` is empty for a good trace. `quote_fidelity`
    is its lowest quote's (None: no quote was checked)."""

    reason: str
    detail: str = ""
    verdict: str | None = None
    task_type: str | None = None
    quote_fidelity: float | None = None


@dataclass(frozen=True)
class Evidence:
    """What a trace may quote: the answers as placed (Chatbot A, B) and the client's turns."""

    answers: tuple[str, str]
    question: str = ""


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


def quote_readings(text: str, evidence: Evidence, min_fidelity: float
                   ) -> tuple[float | None, str | None]:
    """The trace's lowest quote fidelity, and why a quote is invented evidence (or None).

    A quote is invented when under `min_fidelity` of its words are, in order, in the answer it
    cites; when a piece of it changes a number or a negation; or when most of its words are the
    other answer's or the question's, and more of them than its own answer's."""
    lowest, problem = None, None
    for side, other in (("A", "B"), ("B", "A")):
        own_text = evidence.answers[side == "B"]
        for quote in re.findall(rf"<quote_{side}>(.*?)</quote_{side}>", text, re.S):
            own = fidelity(quote, own_text)
            if own is None:
                continue
            lowest = own.share if lowest is None else min(lowest, own.share)
            if problem is None:
                problem = _invented(quote, side, own, min_fidelity, (
                    (f"Chatbot {other}'s answer", evidence.answers[side == "A"]),
                    ("the question", evidence.question)))
    return lowest, problem


def _invented(quote: str, side: str, own: Fidelity, min_fidelity: float,
              elsewhere: tuple[tuple[str, str], ...]) -> str | None:
    shown = f"<quote_{side}> {' '.join(quote.split())[:60]!r}"
    if own.share < 1:
        found = [(f.share, name) for name, other_text in elsewhere if other_text
                 for f in [fidelity(quote, other_text)] if f]
        share, name = max(found, default=(0.0, ""))
        if share >= ELSEWHERE_SHARE and share > own.share:
            return (f"{shown} is {name}'s text ({share:.0%} of its words), not "
                    f"Chatbot {side}'s ({own.share:.0%})")
    if own.flaw:
        return f"{shown} changes what Chatbot {side}'s answer says: {own.flaw}"
    if own.share < min_fidelity:
        return (f"{shown}: {own.share:.0%} of its words are in Chatbot {side}'s answer "
                f"(at least {min_fidelity:.0%} wanted)")
    return None


def substance_problem(text: str, instructions: str = "") -> tuple[str, str] | None:
    """Why a well-formed trace is no judgement of its own, as (reason, detail), or None:
    `template_copy` for a field with no content or a run of the instructions' own words,
    `repetitive` for a text that loops over the same words (a small model's failure, seen in
    the embedded teacher's traces)."""
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
    return None


def check_trace(text: str | None, winner: str, evidence: Evidence | None = None,
                instructions: str = "", min_fidelity: float = MIN_QUOTE_FIDELITY) -> TraceCheck:
    """Apply the verdict rule, the format contract of DESIGN.md section 3, and, given what the
    trace may quote and the judge's instructions, the substance checks."""
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
    ending = _ENDS_WITH[verdict].search(text)
    # the evaluation ends at the last </eval> before the verdict, or at the verdict when the
    # judge closed it after the verdict instead
    eval_end = text.rfind("</eval>", 0, ending.start() if ending else len(text))
    if eval_end < pos and ending and "</eval>" in ending.group():
        eval_end = ending.start()
    if eval_end < pos:
        return TraceCheck("bad_format", "no </eval> after <eval>", verdict, kind)
    evaluation = text[pos:eval_end]
    for side in ("A", "B"):
        if not any(f"<{t}_{side}>" in evaluation and f"</{t}_{side}>" in evaluation
                   for t in ("quote", "summary")):
            return TraceCheck("bad_format", f"<eval> cites nothing of Chatbot {side}", verdict, kind)
    if not ending:
        return TraceCheck("bad_format", "text after the verdict", verdict, kind)
    if text.find("<answer>", eval_end) != ending.start():
        return TraceCheck("bad_format", "more than one <answer> after </eval>", verdict, kind)
    lowest, invented = (quote_readings(text, evidence, min_fidelity) if evidence is not None
                        else (None, None))
    problem = substance_problem(text, instructions) or (("misquote", invented) if invented
                                                        else None)
    if problem:
        return TraceCheck(*problem, verdict, kind, lowest)
    if score(text, winner) != 1:
        return TraceCheck("wrong_verdict", f"said {verdict}, winner is "
                          f"{WINNER_TO_LABEL[winner]}", verdict, kind, lowest)
    return TraceCheck("", "", verdict, kind, lowest)


def check_response(trace: str | None, winner: str, error: str | None = None,
                   finish_reason: str | None = None, evidence: Evidence | None = None,
                   instructions: str = "", min_fidelity: float = MIN_QUOTE_FIDELITY
                   ) -> TraceCheck:
    """The filter's whole decision on one teacher answer: failed calls, truncation, then the
    verdict rule, the format and the substance. Pass 1, pass 2 and the swapped-order check all
    use it."""
    if error:
        return TraceCheck(COST_CAP if error.startswith(COST_CAP) else "teacher_error", error)
    if finish_reason == "length":
        return TraceCheck("truncated", "hit the teacher's max_tokens")
    return check_trace(trace, winner, evidence, instructions, min_fidelity)


def check_rules(min_fidelity: float = MIN_QUOTE_FIDELITY) -> dict[str, str]:
    """What each reason turns away, with the thresholds in force (the card's filter table)."""
    return {
        "empty_trace": "no text",
        "no_verdict": f"no verdict tag in the last {TAIL_CHARS} characters (the RL rule)",
        "ambiguous_verdict": f"both verdict tags in the last {TAIL_CHARS} characters",
        "bad_format": "the Chain-of-Rubrics layout broken: a tag missing or out of order, a "
                      "chatbot not cited, text other than closing tags after the verdict",
        "template_copy": f"an empty field, or {COPY_WORDS} words of the instructions in a row",
        "repetitive": f"under {REPEAT_DISTINCT:.0%} distinct 4-word sequences in a trace of "
                      f"{REPEAT_MIN_WORDS}+ words",
        "misquote": f"a quote with under {min_fidelity:.0%} of its words in order in the answer "
                    f"it cites, a number or negation changed, or at least "
                    f"{ELSEWHERE_SHARE:.0%} of its words the other answer's or the question's",
        "wrong_verdict": "the verdict names the worse answer",
        "truncated": "cut at the teacher's max_tokens",
        "teacher_error": "the call failed",
        "hint_leak": "pass 2's trace mentions the hint it was given",
    }

"""The hint-leak rule for pass-2 traces.

Pass 2 shows the teacher the correct verdict. A trace written that way is only worth training on
when it argues from the two responses as a first judgement would; a trace that leans on the hint
("as the hint says", "the correct verdict is B") or on the earlier attempt ("my previous
evaluation was wrong", "on reconsideration") teaches a judge to expect an oracle. Such a trace
is rejected as `hint_leak` when:

1. it names the hint or being told: "hint", "I was told", "we are informed";
2. it names a verdict as given: "correct/expected/reference/given verdict", "correct winner",
   "the verdict is given";
3. it refers to an earlier judgement of its own: "previous/earlier/prior evaluation (judgement,
   verdict, assessment, analysis, attempt, trace, decision)", "my first/initial/original ...",
   "the initial/original ...";
4. it revises itself: "let me re-evaluate", "reconsidering the responses", "on second
   thought", "I was wrong", "my mistake", "correcting my verdict";
5. it copies the hint: 8 or more consecutive words of the hint message.

Words a first judgement uses legitimately stay allowed: "the correct answer is 12", "the first
response", "the previous turn", "the user's earlier question", "urges the client to reconsider",
"the first evaluation criterion", "the above analysis", "Chatbot A's initial assessment".
Text is matched as normalized words, so case and punctuation do not hide a phrase.
"""

from __future__ import annotations

import re

from pipeline.rules.ngrams import ngram_hashes, words

_NOUNS = r"(evaluation|evaluations|judge?ment|judge?ments|verdict|verdicts|assessment|analysis|" \
         r"attempt|trace|decision)"
_REDO = r"(re\s?evaluat\w*|reconsider\w*|re\s?assess\w*|re\s?examin\w*)"
PATTERNS: dict[str, re.Pattern[str]] = {
    "mentions a hint": re.compile(r"\bhint(s|ed)?\b"),
    "says it was told": re.compile(r"\b(i|we)\s+(was|were|am|are|have been)\s+(told|informed|given)\b"
                                   r"|\btold\s+that\b"),
    "names a given verdict": re.compile(
        r"\b(correct|expected|reference|given|provided|known|true|actual|right)\s+"
        r"(verdict|label|winner)\b|\bverdict\s+(is|was)\s+(given|provided|known)\b"),
    "refers to an earlier judgement": re.compile(
        rf"\b(my|our)\s+(previous|earlier|initial|original|prior|first|last)\s+{_NOUNS}\b"
        rf"|\b(the|that|this)\s+(initial|original)\s+{_NOUNS}\b"
        rf"|\b(previous|earlier|prior)\s+{_NOUNS}\b"),
    "revises itself": re.compile(
        rf"\b(i|we|let me|let us|upon|on)\s+{_REDO}|\b{_REDO}\s+(the|my|this|both)\s+"
        r"(responses|answers|evaluation|verdict|judge?ment|comparison)\b"
        r"|\b(on second thought|i was wrong|my mistake|i made a mistake|correct(ing|ed)?\s+my)\b"),
}
COPY_WORDS = 8


def hint_leak(trace: str, hint: str) -> str | None:
    """Why the trace leaks the hint, or None when it argues on its own."""
    said = words(trace)
    text = " ".join(said)
    for why, pattern in PATTERNS.items():
        m = pattern.search(text)
        if m:
            return f"{why}: '{m.group(0)}'"
    copied = set(ngram_hashes(words(hint), COPY_WORDS).tolist())
    if copied and copied & set(ngram_hashes(said, COPY_WORDS).tolist()):
        return f"copies {COPY_WORDS}+ words of the hint"
    return None

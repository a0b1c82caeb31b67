"""Whether a preference label holds up against a reference answer the source publishes.

A pair's label says the chosen answer is the better one. Where the data carries a reference
final answer (Math-Step-DPO's `answer`; any source may declare one), that is checkable: each
answer's final result is compared with the reference by `math-verify` (Hugging Face's answer
checker, the one verl and open-r1 reward math with), which reads LaTeX and plain forms alike.
The label is contested when the chosen answer misses the reference or the rejected one reaches
it; verified when the chosen one reaches it and the rejected one does not; unverified when
there is no reference or no final answer to read.
"""

from __future__ import annotations

import threading
from typing import Any

VERIFIED, UNVERIFIED, CONTESTED = "verified", "unverified", "contested"
# The kind of evidence a label was checked with (the prefix of `label_evidence`).
REFERENCE = "reference"
# ... or with the teachers' unhinted judgements (stages/label_audit.py)
TEACHERS = "teachers"


def _final(text: str) -> list[Any]:
    """The final answer math-verify reads in `text` (empty: none)."""
    from math_verify import parse

    return parse(text, parsing_timeout=_timeout())


def _timeout() -> int:
    """math-verify's time limits work by signal, only in a process's main thread."""
    return 5 if threading.current_thread() is threading.main_thread() else 0


def _shown(parsed: list[Any]) -> str:
    return str(parsed[-1])[:40] if parsed else "none"


def check_label(reference: str | None, chosen: str, rejected: str) -> tuple[str, str]:
    """(status, evidence) of a pair's label against the source's reference answer."""
    from math_verify import verify

    if not reference or not reference.strip():
        return UNVERIFIED, ""
    gold = _final(reference)
    if not gold:
        return UNVERIFIED, f"{REFERENCE}: the reference {reference[:40]!r} has no answer to read"
    good, bad = _final(chosen), _final(rejected)
    if not good:
        return UNVERIFIED, f"{REFERENCE}: the chosen answer states no final answer"
    good_ok = verify(gold, good, timeout_seconds=_timeout())
    bad_ok = bool(bad) and verify(gold, bad, timeout_seconds=_timeout())
    ref = _shown(gold)
    if not good_ok:
        return CONTESTED, (f"{REFERENCE}: the chosen answer ends at {_shown(good)}, not the "
                           f"reference {ref}" + ("; the rejected one reaches it" if bad_ok
                                                  else ""))
    if bad_ok:
        return CONTESTED, f"{REFERENCE}: the rejected answer reaches the reference {ref} too"
    return VERIFIED, f"{REFERENCE}: the chosen answer reaches {ref}, the rejected one does not"


def evidence_kind(evidence: str | None) -> str:
    """What a label was checked with, from its evidence ("" when it was not)."""
    return (evidence or "").split(":", 1)[0] if evidence else ""

"""A label checked against the source's reference answer with math-verify: verified when the
chosen answer reaches it and the rejected one does not, contested when either fails, unverified
when there is nothing to compare."""

from __future__ import annotations

import pytest

from pipeline.rules.labels import CONTESTED, UNVERIFIED, VERIFIED, check_label, evidence_kind


@pytest.mark.parametrize("reference, chosen, rejected, status, said", [
    ("324", "36 x $9 = $324.\nThe answer is: 324", "13 x $9 = $117.\nThe answer is: 117",
     VERIFIED, "the chosen answer reaches 324, the rejected one does not"),
    # the same result written another way: LaTeX, a decimal, a boxed answer
    (r"\frac{1}{2}", "So $x = 0.5$. The answer is: 0.5", r"The answer is: \boxed{2}", VERIFIED,
     "reaches"),
    # a flipped label: the chosen answer misses the reference and the rejected one reaches it
    ("27", "He has $40 - $8 = $32 left.\nThe answer is: 32",
     "He has $40 - $8 - $5 = $27 left.\nThe answer is: 27", CONTESTED,
     "the chosen answer ends at 32, not the reference 27; the rejected one reaches it"),
    ("27", "The answer is: 26", "The answer is: 25", CONTESTED, "ends at 26, not the reference 27"),
    # both reach it: the label rests on something the reference cannot tell
    ("2", "The answer is: 2", "Dividing, we get 2.\nThe answer is: 2", CONTESTED,
     "the rejected answer reaches the reference 2 too"),
    # nothing to compare
    (None, "The answer is: 2", "The answer is: 3", UNVERIFIED, ""),
    ("2", "I cannot tell from the steps given.", "The answer is: 3", UNVERIFIED,
     "the chosen answer states no final answer"),
])
def test_a_label_against_the_reference(reference, chosen, rejected, status, said):
    got, evidence = check_label(reference, chosen, rejected)
    assert got == status and said in evidence
    assert evidence_kind(evidence) == ("reference" if evidence else "")

"""Pure rules, no Ray and no I/O: the verdict rule (also verl's reward), the trace checks and
the quote fidelity they grade evidence with, the label check against a reference answer, the
hint-leak rule, n-grams, the judge prompt, templates and the keys rows are ordered by."""

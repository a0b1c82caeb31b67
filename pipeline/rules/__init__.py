"""Pure rules, no Ray and no I/O: the verdict rule and trace checks (also verl's reward), the
hint-leak rule, n-grams, the judge prompt, templates and the keys rows are ordered by."""

"""One-pass placeholder filling for the judge prompts and the dataset card.

`{name}` is replaced when `name` is given; nothing inside a replacement is read again, so text
that happens to contain `{question}` can never be mistaken for a placeholder.
"""

from __future__ import annotations

import re
from functools import lru_cache

_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)\}")


@lru_cache(maxsize=64)
def _pieces(template: str) -> tuple[str, ...]:
    """Text and placeholder names, alternating: a template is parsed once, not per row."""
    return tuple(_PLACEHOLDER.split(template))


def fill(template: str, values: dict[str, str]) -> str:
    pieces = _pieces(template)
    out = list(pieces)
    for i in range(1, len(pieces), 2):
        name = pieces[i]
        out[i] = values.get(name, f"{{{name}}}")
    return "".join(out)

"""One-pass placeholder filling for the judge prompts and the dataset card.

`{name}` is replaced when `name` is given; nothing inside a replacement is read again, so text
that happens to contain `{question}` can never be mistaken for a placeholder.
"""

from __future__ import annotations

import re

_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)\}")


def fill(template: str, values: dict[str, str]) -> str:
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)

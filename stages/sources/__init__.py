"""Sources are discovered, not listed: every module here that defines a `Source` subclass is one.

Adding a source is one module here, one YAML in `conf/source/` and one card in
`data_cards/sources/`, all named after the module.
"""

from __future__ import annotations

import sys
from functools import cache

from pipeline.engine.discovery import discover
from stages.sources.base import Source


@cache
def registry() -> dict[str, type[Source]]:
    """Source name (= module name) -> its class."""
    return discover(sys.modules[__name__], Source, lambda cls, module: module,
                    skip=frozenset({"base"}))


def get_source(name: str) -> Source:
    sources = registry()
    if name not in sources:
        known = ", ".join(sorted(sources)) or "none"
        raise KeyError(f"unknown source '{name}' (known: {known}); add stages/sources/{name}.py")
    return sources[name]()

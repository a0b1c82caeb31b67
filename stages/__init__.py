"""rubricforge stages: one module per stage, one module per source under `sources`.

A recipe names stages by their `name`; they are discovered here, not listed.
"""

from __future__ import annotations

import sys
from functools import cache

from pipeline.engine.discovery import discover
from pipeline.engine.stage import Stage


@cache
def stage_registry() -> dict[str, type[Stage]]:
    return discover(sys.modules[__name__], Stage, lambda cls, module: cls.name)

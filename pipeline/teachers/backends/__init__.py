"""Teacher backends: one module each, found by looking (like sources), never named elsewhere.

A backend declares what it is (`pipeline/teachers/backends/base.py`): its checks before any work, how
its endpoints are started, how it answers a stage's uncached requests into the cache, and the
capabilities the rest of the build asks about (its price factor, whether it is metered, whether
its tokenizer is known). The engine, plan, spend and client code ask the backend; they never
compare backend names. Adding one is a module here and a YAML in `conf/teacher/`.
"""

from __future__ import annotations

import sys
from functools import cache
from typing import Any

from pipeline.engine.discovery import discover
from pipeline.teachers.backends.base import Backend


@cache
def registry() -> dict[str, type[Backend]]:
    """Backend name (its `name`) -> its class."""
    return discover(sys.modules[__name__], Backend, lambda cls, module: cls.name,
                    skip=frozenset({"base"}))


def backend_of(teacher_cfg: Any) -> Backend:
    """The backend a teacher setting names (checked when the config is loaded: `check_backend`)."""
    return registry()[teacher_cfg.backend]()

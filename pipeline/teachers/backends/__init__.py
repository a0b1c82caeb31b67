"""Teacher backends: one module each, found by looking (like sources), never named elsewhere.

A backend declares its settings and what the rest of the build needs to know of it on its
`Config` class (pipeline/teachers/teacher_config.py), and does its own work on its `Backend`
class (`base.py`): its checks before any work, how its endpoints are started, how it answers a
pass's uncached requests into the cache. The engine, plan, spend and client code never compare
backend names. Adding one is a module here and a YAML in `conf/teacher/`.
"""

from __future__ import annotations

import logging
import sys
from functools import cache
from typing import Any

from pipeline.engine.config import ConfigError
from pipeline.engine.discovery import discover
from pipeline.teachers.backends.base import Backend

log = logging.getLogger("rubricforge")


@cache
def registry() -> dict[str, type[Backend]]:
    """Backend name (its `name`) -> its class."""
    return discover(sys.modules[__name__], Backend, lambda cls, module: cls.name,
                    skip=frozenset({"base"}))


@cache
def renamed() -> dict[str, str]:
    """An earlier backend name -> the name it has now."""
    return {old: name for name, cls in registry().items() for old in cls.old_names}


def backend_of(teacher_cfg: Any) -> Backend:
    """The backend a teacher setting names (checked when the config is loaded: `check_backend`)."""
    return registry()[teacher_cfg.backend]()


def check_backend(key: str, t: Any) -> Backend:
    """The backend of a teacher setting, or one line naming the known ones."""
    known = registry()
    if t.backend not in known:
        raise ConfigError(f"{key}.backend='{t.backend}' is not one of "
                          f"{', '.join(sorted(known))}")
    return known[t.backend]()

"""Find plug-ins by looking, not by a list to edit: every module of a package is imported and
the subclasses of a base defined there are collected under a name."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable
from types import ModuleType


def discover(package: ModuleType, base: type, name_of: Callable[[type, str], str],
             skip: frozenset[str] = frozenset()) -> dict[str, type]:
    """name -> class for each subclass of `base` defined in a module of `package`."""
    found: dict[str, type] = {}
    for info in pkgutil.iter_modules(package.__path__):
        if info.ispkg or info.name in skip or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        for obj in vars(module).values():
            if (inspect.isclass(obj) and issubclass(obj, base) and obj is not base
                    and obj.__module__ == module.__name__):
                found[name_of(obj, info.name)] = obj
    return found

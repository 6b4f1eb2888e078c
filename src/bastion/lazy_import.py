"""A module imported on first use, for libraries only some paths need (SQL parsing, for one).

`bastion wrap` is started by an agent for each server it runs, and everything imported
before it answers `initialize` is time the agent waits: a parser needed only to judge
a call is loaded when the first call is judged.
"""

from __future__ import annotations

import importlib
import threading
from types import ModuleType
from typing import Any

__all__ = ["lazy_module"]

_LOCK = threading.Lock()


class _LazyModule(ModuleType):
    """Stands in for a module; the first attribute looked up imports it and takes its namespace."""

    def __getattr__(self, attribute: str) -> Any:
        with _LOCK:
            real = importlib.import_module(self.__name__)
            self.__dict__.update(real.__dict__)
        return getattr(real, attribute)


def lazy_module(name: str) -> ModuleType:
    """Module `name`, imported when an attribute of it is first used (import errors surface then)."""
    return _LazyModule(name)

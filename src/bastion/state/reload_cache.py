"""A copy in memory of a small table, reloaded when the database says it changed.

Token and pin checks run on every request, so they read memory, not the database. What
"changed" means is the backend's: SQLite's `PRAGMA data_version` (bumped by every commit of
another connection), or a counter a PostgreSQL notification bumps.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class ReloadCache(Generic[T]):
    """`value` as `load()` last returned it, reloaded when `version()` returns something new.

    `version()` is asked at most once every `check_interval` seconds (it may cost a query);
    `max_age`, when set, reloads at least that often whatever `version()` says. `invalidate()`
    forces a reload on the next `get`. Not thread-safe: the owner holds its lock around calls.
    """

    def __init__(
        self,
        load: Callable[[], T],
        version: Callable[[], Hashable],
        *,
        empty: T,
        check_interval: float = 0.0,
        max_age: float | None = None,
    ) -> None:
        self._load = load
        self._version = version
        self._check_interval = check_interval
        self._max_age = max_age
        self.value: T = empty
        self._loaded_version: Hashable | None = None
        self._loaded_at: float | None = None
        self._checked_at: float | None = None

    def get(self, now: float) -> T:
        """The value, reloaded first if it may be out of date at Unix time `now`."""
        loaded_at = self._loaded_at
        young = loaded_at is not None and (self._max_age is None or 0 <= now - loaded_at < self._max_age)
        if young and self._loaded_version is not None:
            checked_at = self._checked_at
            if checked_at is not None and 0 <= now - checked_at < self._check_interval:
                return self.value
            self._checked_at = now
            version = self._version()
            if version == self._loaded_version:
                return self.value
        else:
            self._checked_at = now
            version = self._version()
        self.value = self._load()
        self._loaded_version = version
        self._loaded_at = now
        return self.value

    def recheck(self, now: float) -> T:
        """The value, reloaded first if `version()`, asked now whatever `check_interval` says,
        is new: for a caller that did not find what it looked for in the copy."""
        self._checked_at = None
        return self.get(now)

    def invalidate(self) -> None:
        """Reload on the next `get`."""
        self._loaded_version = None

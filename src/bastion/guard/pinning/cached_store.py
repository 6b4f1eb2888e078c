"""What both pin stores do alike: a copy in memory for the per-call lookup, writes in threads.

A store keeps the pins table in a `ReloadCache` (`lookup` and `pins_of` read it on every
call, never the database) and runs every read and write of the database in a worker
thread, each state change with its event in one transaction (`transitions.py`). A backend
supplies its cache and two context managers giving a `transitions.Cursor`: `_reading()`
and `_writing(server)` (one transaction, serialised per server).
"""

from __future__ import annotations

import builtins
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Mapping
from contextlib import AbstractContextManager
from typing import Any, TypeVar

import anyio

from bastion.guard.pinning import transitions
from bastion.guard.pinning.events import PinEvent
from bastion.guard.pinning.scanner import Finding
from bastion.guard.pinning.store import PinRecord
from bastion.state.reload_cache import ReloadCache

_Happened = TypeVar("_Happened")
"""What a pin change reports besides the pin: its events, or the one event."""

PinTable = dict[tuple[str, str], PinRecord]


class CachedPinStore(ABC):
    """The `PinStore` methods, over a backend's cursor and cache."""

    _clock: Callable[[], float]
    _cache: ReloadCache[PinTable]
    _cache_lock: threading.Lock
    """Guards the copy in memory (and whatever the backend reloads it through)."""

    @abstractmethod
    def _reading(self) -> AbstractContextManager[transitions.Cursor]:
        """A cursor for reads."""

    @abstractmethod
    def _writing(self, server: str) -> AbstractContextManager[transitions.Cursor]:
        """A cursor in one transaction that holds `server`'s pins for itself, committed on exit."""

    # --- reads -------------------------------------------------------------------

    def lookup(self, server: str, tool: str) -> PinRecord | None:
        with self._cache_lock:
            return self._cache.get(self._clock()).get((server, tool))

    def pins_of(self, server: str) -> builtins.list[PinRecord]:
        with self._cache_lock:
            table = self._cache.get(self._clock())
            return [record for (owner, _), record in table.items() if owner == server]

    async def list(self, server: str | None = None) -> builtins.list[PinRecord]:
        return await anyio.to_thread.run_sync(self._read, transitions.list_pins, server)

    async def events(
        self, server: str | None = None, tool: str | None = None, limit: int = 100
    ) -> builtins.list[PinEvent]:
        return await anyio.to_thread.run_sync(self._read, transitions.list_events, server, tool, limit)

    def _read(self, query: Callable[..., Any], *args: Any) -> Any:
        with self._reading() as cursor:
            return query(cursor, *args)

    # --- writes ------------------------------------------------------------------

    async def observe(
        self,
        server: str,
        tool: str,
        fingerprint: str,
        definition: Mapping[str, Any],
        findings: tuple[Finding, ...],
    ) -> tuple[PinRecord, builtins.list[PinEvent]]:
        change = transitions.observe
        return await anyio.to_thread.run_sync(self._change, change, server, tool, fingerprint, definition, findings)

    async def mark_removed(self, server: str, present: Collection[str]) -> builtins.list[PinEvent]:
        return await anyio.to_thread.run_sync(self._mark_removed, server, frozenset(present))

    def _mark_removed(self, server: str, present: frozenset[str]) -> builtins.list[PinEvent]:
        with self._writing(server) as cursor:
            events = transitions.mark_removed(cursor, server, present, self._clock())
        with self._cache_lock:
            self._cache.invalidate()  # read again on the next lookup
        return events

    async def accept(
        self, server: str, tool: str, *, actor: str, expected_hash: str | None = None
    ) -> tuple[PinRecord, PinEvent]:
        return await anyio.to_thread.run_sync(self._change, transitions.accept, server, tool, actor, expected_hash)

    def _change(
        self, change: Callable[..., tuple[PinRecord, _Happened]], server: str, *args: Any
    ) -> tuple[PinRecord, _Happened]:
        """`change(cursor, server, *args, now)` on one pin, in a write transaction; then the
        cached copy of that pin is the one written."""
        with self._writing(server) as cursor:
            record, happened = change(cursor, server, *args, self._clock())
        with self._cache_lock:
            self._cache.value[(record.server, record.tool)] = record
        return record, happened

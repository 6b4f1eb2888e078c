"""Pins in a SQLite file (`<data_dir>/pins.db`, WAL), shared by the gateway and the `bastion tools` CLI.

`lookup` reads an in-memory copy of the table, reloaded when another connection changed
the file (checked at most every `refresh_interval` seconds), so an acceptance made with
the CLI reaches a running gateway within about a second. Every state change and its event
are written in one transaction (`transitions.py`).
"""

from __future__ import annotations

import builtins
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bastion.guard.pinning import transitions
from bastion.guard.pinning.cached_store import CachedPinStore, PinTable
from bastion.state import sqlite_schema
from bastion.state.reload_cache import ReloadCache

DEFAULT_REFRESH_INTERVAL = 0.5
"""Seconds between checks for changes made by other processes (bounds the acceptance delay)."""

_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE pins (
        server TEXT NOT NULL,
        tool TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('pinned', 'changed', 'held')),
        trusted_hash TEXT,
        trusted_definition TEXT,
        current_hash TEXT NOT NULL,
        current_definition TEXT NOT NULL,
        findings TEXT NOT NULL DEFAULT '[]',
        first_seen REAL NOT NULL,
        changed_at REAL,
        removed_at REAL,
        accepted_by TEXT,
        accepted_at REAL,
        PRIMARY KEY (server, tool)
    );
    CREATE TABLE pin_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        time REAL NOT NULL,
        server TEXT NOT NULL,
        tool TEXT NOT NULL,
        kind TEXT NOT NULL,
        hash TEXT,
        previous_hash TEXT,
        actor TEXT,
        detail TEXT NOT NULL DEFAULT '[]'
    );
    CREATE INDEX pin_events_tool ON pin_events (server, tool);
    """,
)
SCHEMA_VERSION = len(_MIGRATIONS)


class SqlitePinStore(CachedPinStore):
    """`PinStore` on a SQLite file. `clock` returns Unix time."""

    def __init__(
        self,
        path: Path,
        *,
        clock: Callable[[], float] = time.time,
        refresh_interval: float = DEFAULT_REFRESH_INTERVAL,
    ) -> None:
        self._path = Path(path)
        self._clock = clock
        self._lock = threading.Lock()
        """Guards the writer connection; held through busy waits, so never taken by `lookup`."""
        self._cache_lock = threading.Lock()
        """Guards the reader connection and the copy in memory."""
        self._db = sqlite_schema.open_private(self._path)
        with self._lock:
            sqlite_schema.migrate(self._db, _MIGRATIONS, what="pin", path=self._path)
        self._reader = sqlite_schema.connect(self._path)
        self._cache: ReloadCache[PinTable] = ReloadCache(
            self._load, lambda: sqlite_schema.data_version(self._reader), empty={}, check_interval=refresh_interval
        )

    def _load(self) -> PinTable:
        rows = self._reader.execute(f"SELECT {transitions.COLUMNS} FROM pins").fetchall()
        return {(row[0], row[1]): transitions.record_of(row) for row in rows}

    def _cursor(self, statement: str, params: Sequence[Any] = ()) -> builtins.list[tuple[Any, ...]]:
        return self._db.execute(statement, params).fetchall()

    @contextmanager
    def _reading(self) -> Iterator[transitions.Cursor]:
        with self._lock:
            yield self._cursor

    @contextmanager
    def _writing(self, server: str) -> Iterator[transitions.Cursor]:
        """The writer, in BEGIN IMMEDIATE ... COMMIT (one writer per file), rolled back on any exception."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._cursor
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def close(self) -> None:
        with self._lock, self._cache_lock:
            self._reader.close()
            self._db.close()

"""Pins in the shared PostgreSQL database (`database_url`), shared by every gateway replica.

`lookup` reads a copy in memory. Every change sends a notification in its transaction;
the other replicas' listeners mark their copy stale, so a tool pinned, changed or accepted
through one replica (or `bastion tools accept`) is seen by the others on their next call.
Should a notification be lost, the copy is re-read at least every `max_age` seconds, and on
every lookup while the notification connection is down. Changes to one server's pins are
serialised across replicas by a transaction-scoped advisory lock.
"""

from __future__ import annotations

import builtins
import threading
import time
import uuid
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from bastion.guard.pinning import transitions
from bastion.guard.pinning.cached_store import CachedPinStore, PinTable
from bastion.state.postgres import NotificationListener, Subscription, acquire
from bastion.state.reload_cache import ReloadCache

DEFAULT_MAX_AGE = 5.0
"""Seconds a replica trusts its copy without hearing of a change (the bound if a notification is lost)."""

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE pins (
            server TEXT NOT NULL,
            tool TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('pinned', 'changed', 'held')),
            trusted_hash TEXT,
            trusted_definition TEXT,
            current_hash TEXT NOT NULL,
            current_definition TEXT NOT NULL,
            findings TEXT NOT NULL DEFAULT '[]',
            first_seen DOUBLE PRECISION NOT NULL,
            changed_at DOUBLE PRECISION,
            removed_at DOUBLE PRECISION,
            accepted_by TEXT,
            accepted_at DOUBLE PRECISION,
            PRIMARY KEY (server, tool))""",
        """CREATE TABLE pin_events (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            time DOUBLE PRECISION NOT NULL,
            server TEXT NOT NULL,
            tool TEXT NOT NULL,
            kind TEXT NOT NULL,
            hash TEXT,
            previous_hash TEXT,
            actor TEXT,
            detail TEXT NOT NULL DEFAULT '[]')""",
        "CREATE INDEX pin_events_tool ON pin_events (server, tool)",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)


class PostgresPinStore(CachedPinStore):
    """`PinStore` on PostgreSQL. `clock` returns Unix time."""

    def __init__(self, url: str, *, clock: Callable[[], float] = time.time, max_age: float = DEFAULT_MAX_AGE) -> None:
        self._shared = acquire(url)
        self._db = self._shared.database
        self._clock = clock
        self._channel = self._db.channel("pins")
        self._me = uuid.uuid4().hex
        """This store's own notifications carry it: its copy is already up to date."""
        self._generation = 0
        self._subscription: Subscription | None = None
        self._listener: NotificationListener
        self._cache_lock = threading.Lock()
        try:
            self._db.migrate("pins", MIGRATIONS)
        except BaseException:
            self._shared.release()
            raise
        self._cache: ReloadCache[PinTable] = ReloadCache(self._load, self._version, empty={}, max_age=max_age)

    def _notified(self, payload: str) -> None:
        if payload != self._me:
            self._generation += 1  # only the listener thread writes it

    def _reset(self) -> None:
        self._generation += 1

    def _version(self) -> Hashable:
        if self._subscription is None:
            # Listen before the first read, so a change committed after it is never missed.
            self._listener = self._db.listener
            self._subscription = self._listener.subscribe(self._channel, self._notified, self._reset)
        return self._generation if self._listener.healthy else object()

    def _load(self) -> PinTable:
        with self._db.pool.connection() as conn:
            rows = conn.execute(f"SELECT {transitions.COLUMNS} FROM pins".encode()).fetchall()
        return {(row[0], row[1]): transitions.record_of(row) for row in rows}

    @contextmanager
    def _transaction(self, server: str | None) -> Iterator[transitions.Cursor]:
        """A connection in a transaction, as a `Cursor`; with `server`, holding that server's pin lock
        and announcing the change on commit."""
        with self._db.pool.connection() as conn, conn.transaction():

            def cursor(statement: str, params: Sequence[Any] = ()) -> builtins.list[tuple[Any, ...]]:
                result = conn.execute(statement.replace("?", "%s").encode(), params)
                return result.fetchall() if result.description is not None else []

            if server is not None:
                cursor("SELECT pg_advisory_xact_lock(hashtext(?))", (f"bastion.pins:{server}",))
            yield cursor
            if server is not None:
                cursor("SELECT pg_notify(?, ?)", (self._channel, self._me))

    def _reading(self) -> AbstractContextManager[transitions.Cursor]:
        return self._transaction(None)

    def _writing(self, server: str) -> AbstractContextManager[transitions.Cursor]:
        return self._transaction(server)

    def close(self) -> None:
        if self._subscription is not None:
            self._db.listener.unsubscribe(self._subscription)
        self._shared.release()

"""Pins in a SQLite file (WAL), shared by the gateway and the `bastion tools` CLI.

`lookup` reads an in-memory copy of the table, reloaded when another connection changed
the file (checked at most every `refresh_interval` seconds), so an acceptance made with
the CLI reaches a running gateway within about a second. Every state change and its event
are written in one transaction.
"""

from __future__ import annotations

import builtins
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any, cast

import anyio

from bastion import sqlite_schema
from bastion.guard.pinning.events import PinEvent, PinEventKind
from bastion.guard.pinning.fingerprint import changed_fields
from bastion.guard.pinning.scanner import Finding
from bastion.guard.pinning.store import PinRecord, PinState, PinStoreError

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
_COLUMNS = (
    "server, tool, state, trusted_hash, trusted_definition, current_hash, current_definition, findings, "
    "first_seen, changed_at, removed_at, accepted_by, accepted_at"
)
_EVENT_COLUMNS = "kind, server, tool, time, hash, previous_hash, actor, detail"


def _record(row: tuple[Any, ...]) -> PinRecord:
    (server, tool, state, trusted_hash, trusted_def, current_hash, current_def, findings, *times) = row
    first_seen, changed_at, removed_at, accepted_by, accepted_at = times
    return PinRecord(
        server=server,
        tool=tool,
        state=cast(PinState, state),
        trusted_hash=trusted_hash,
        current_hash=current_hash,
        current_definition=json.loads(current_def),
        trusted_definition=None if trusted_def is None else json.loads(trusted_def),
        findings=tuple(Finding(**item) for item in json.loads(findings)),
        first_seen=first_seen,
        changed_at=changed_at,
        removed_at=removed_at,
        accepted_by=accepted_by,
        accepted_at=accepted_at,
    )


def _event(row: tuple[Any, ...]) -> PinEvent:
    kind, server, tool, at, hash_, previous, actor, detail = row
    return PinEvent(
        kind=cast(PinEventKind, kind),
        server=server,
        tool=tool,
        time=at,
        hash=hash_,
        previous_hash=previous,
        actor=actor,
        detail=tuple(json.loads(detail)),
    )


def _findings_json(findings: tuple[Finding, ...]) -> str:
    return json.dumps([{"kind": f.kind, "where": f.where, "excerpt": f.excerpt} for f in findings])


class SqlitePinStore:
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
        self._refresh_interval = refresh_interval
        self._lock = threading.Lock()
        """Guards the writer connection; held through busy waits, so never taken by `lookup`."""
        self._cache_lock = threading.Lock()
        """Guards the reader connection and the copy in memory."""
        self._path.parent.mkdir(parents=True, exist_ok=True)
        if not self._path.exists():
            os.close(os.open(self._path, os.O_CREAT | os.O_WRONLY, 0o600))
        self._db = self._connect()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._migrate()
        self._reader = self._connect()
        self._cache: dict[tuple[str, str], PinRecord] = {}
        self._data_version: int | None = None
        self._checked_at: float | None = None

    def _connect(self) -> sqlite3.Connection:
        return sqlite_schema.connect(self._path)

    def _migrate(self) -> None:
        with self._lock, self._transaction():
            sqlite_schema.apply_migrations(self._db, _MIGRATIONS, what="pin", path=self._path)

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)

    # --- reads -------------------------------------------------------------------

    def lookup(self, server: str, tool: str) -> PinRecord | None:
        with self._cache_lock:
            self._refresh(self._clock())
            return self._cache.get((server, tool))

    def pins_of(self, server: str) -> builtins.list[PinRecord]:
        with self._cache_lock:
            self._refresh(self._clock())
            return [record for (owner, _), record in self._cache.items() if owner == server]

    def _refresh(self, now: float) -> None:
        if (
            self._data_version is not None
            and self._checked_at is not None
            and 0 <= now - self._checked_at < self._refresh_interval
        ):
            return
        self._checked_at = now
        version: int = self._reader.execute("PRAGMA data_version").fetchone()[0]
        if version == self._data_version:
            return
        rows = self._reader.execute(f"SELECT {_COLUMNS} FROM pins").fetchall()
        self._cache = {(row[0], row[1]): _record(row) for row in rows}
        self._data_version = version

    async def list(self, server: str | None = None) -> builtins.list[PinRecord]:
        return await anyio.to_thread.run_sync(self._list, server)

    def _list(self, server: str | None) -> builtins.list[PinRecord]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM pins WHERE ? IS NULL OR server = ? ORDER BY server, tool", (server, server)
            ).fetchall()
        return [_record(row) for row in rows]

    async def events(
        self, server: str | None = None, tool: str | None = None, limit: int = 100
    ) -> builtins.list[PinEvent]:
        return await anyio.to_thread.run_sync(self._events, server, tool, limit)

    def _events(self, server: str | None, tool: str | None, limit: int) -> builtins.list[PinEvent]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_EVENT_COLUMNS} FROM pin_events WHERE (? IS NULL OR server = ?) AND (? IS NULL OR tool = ?) "
                "ORDER BY id DESC LIMIT ?",
                (server, server, tool, tool, limit),
            ).fetchall()
        return [_event(row) for row in reversed(rows)]

    # --- writes ------------------------------------------------------------------

    async def observe(
        self,
        server: str,
        tool: str,
        fingerprint: str,
        definition: Mapping[str, Any],
        findings: tuple[Finding, ...],
    ) -> tuple[PinRecord, builtins.list[PinEvent]]:
        return await anyio.to_thread.run_sync(self._observe, server, tool, fingerprint, definition, findings)

    def _observe(
        self,
        server: str,
        tool: str,
        fingerprint: str,
        definition: Mapping[str, Any],
        findings: tuple[Finding, ...],
    ) -> tuple[PinRecord, builtins.list[PinEvent]]:
        now = self._clock()
        events: list[PinEvent] = []
        with self._lock, self._transaction():
            row = self._row(server, tool)
            if row is None:
                state: PinState = "held" if findings else "pinned"
                self._db.execute(
                    "INSERT INTO pins (server, tool, state, trusted_hash, trusted_definition, current_hash, "
                    "current_definition, findings, first_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        server,
                        tool,
                        state,
                        None if findings else fingerprint,
                        None if findings else json.dumps(definition),
                        fingerprint,
                        json.dumps(definition),
                        _findings_json(findings),
                        now,
                    ),
                )
                detail = tuple(str(f) for f in findings)
                events.append(PinEvent(state, server, tool, now, hash=fingerprint, detail=detail))
            else:
                record = _record(row)
                if record.removed_at is not None:
                    self._db.execute("UPDATE pins SET removed_at = NULL WHERE server = ? AND tool = ?", (server, tool))
                    events.append(PinEvent("restored", server, tool, now, hash=fingerprint))
                if record.current_hash != fingerprint:
                    # Strict: a changed tool stays blocked until accepted, even if it changes back.
                    new_state: PinState = "held" if record.state == "held" else "changed"
                    self._db.execute(
                        "UPDATE pins SET state = ?, current_hash = ?, current_definition = ?, findings = ?, "
                        "changed_at = ? WHERE server = ? AND tool = ?",
                        (new_state, fingerprint, json.dumps(definition), _findings_json(findings), now, server, tool),
                    )
                    fields = changed_fields(record.current_definition, definition)
                    detail = (", ".join(fields) or "representation", *(str(f) for f in findings))
                    previous = record.current_hash
                    events.append(PinEvent("changed", server, tool, now, fingerprint, previous, detail=detail))
            self._insert_events(events)
            row = self._row(server, tool)
        assert row is not None
        updated = _record(row)
        with self._cache_lock:
            self._cache[(server, tool)] = updated
        return updated, events

    async def mark_removed(self, server: str, present: Collection[str]) -> builtins.list[PinEvent]:
        return await anyio.to_thread.run_sync(self._mark_removed, server, frozenset(present))

    def _mark_removed(self, server: str, present: frozenset[str]) -> builtins.list[PinEvent]:
        now = self._clock()
        with self._lock, self._transaction():
            rows = self._db.execute(
                "SELECT tool, current_hash FROM pins WHERE server = ? AND removed_at IS NULL", (server,)
            ).fetchall()
            gone = [(tool, current) for tool, current in rows if tool not in present]
            for tool, _ in gone:
                self._db.execute("UPDATE pins SET removed_at = ? WHERE server = ? AND tool = ?", (now, server, tool))
            events = [PinEvent("removed", server, tool, now, hash=current) for tool, current in gone]
            self._insert_events(events)
        return events

    async def accept(
        self, server: str, tool: str, *, actor: str, expected_hash: str | None = None
    ) -> tuple[PinRecord, PinEvent]:
        return await anyio.to_thread.run_sync(self._accept, server, tool, actor, expected_hash)

    def _accept(self, server: str, tool: str, actor: str, expected_hash: str | None) -> tuple[PinRecord, PinEvent]:
        now = self._clock()
        with self._lock, self._transaction():
            row = self._row(server, tool)
            if row is None:
                raise PinStoreError(f"no pinned tool {tool!r} on server {server!r}; see: bastion tools list")
            record = _record(row)
            if expected_hash is not None and not _matches(record.current_hash, expected_hash):
                raise PinStoreError(
                    f"tool {tool!r} on server {server!r} changed again since you reviewed it "
                    f"(now {record.current_hash}); review it again with: bastion tools list --server {server}"
                )
            self._db.execute(
                "UPDATE pins SET state = 'pinned', trusted_hash = current_hash, "
                "trusted_definition = current_definition, accepted_by = ?, accepted_at = ? "
                "WHERE server = ? AND tool = ?",
                (actor, now, server, tool),
            )
            event = PinEvent(
                "accepted",
                server,
                tool,
                now,
                hash=record.current_hash,
                previous_hash=record.trusted_hash,
                actor=actor,
                detail=(f"was {record.status}",),
            )
            self._insert_events([event])
            row = self._row(server, tool)
        assert row is not None
        updated = _record(row)
        with self._cache_lock:
            self._cache[(server, tool)] = updated
        return updated, event

    def _row(self, server: str, tool: str) -> tuple[Any, ...] | None:
        row: tuple[Any, ...] | None = self._db.execute(
            f"SELECT {_COLUMNS} FROM pins WHERE server = ? AND tool = ?", (server, tool)
        ).fetchone()
        return row

    def _insert_events(self, events: builtins.list[PinEvent]) -> None:
        self._db.executemany(
            "INSERT INTO pin_events (time, server, tool, kind, hash, previous_hash, actor, detail) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (e.time, e.server, e.tool, e.kind, e.hash, e.previous_hash, e.actor, json.dumps(list(e.detail)))
                for e in events
            ],
        )

    def close(self) -> None:
        with self._lock, self._cache_lock:
            self._reader.close()
            self._db.close()


def _matches(fingerprint: str, expected: str) -> bool:
    """`expected` is the whole fingerprint, or a prefix of its hex part of at least 8 digits."""
    hex_part = fingerprint.removeprefix("sha256:")
    wanted = expected.removeprefix("sha256:").lower()
    return len(wanted) >= 8 and hex_part.startswith(wanted)


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any exception."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._db.execute("COMMIT" if exc_type is None else "ROLLBACK")

"""The shared audit store: PostgreSQL, for several gateway replicas (`audit.url: postgresql://...`).

Writes go through the same writer thread and group commit as SQLite (`audit/writer.py`),
over psycopg 3. Each batch, in one transaction, locks the single-row chain head
(`SELECT ... FOR UPDATE`), appends its events with COPY, and moves the head: appends from
every replica are thereby serialised and the chain stays linear. Full-text search uses a
generated `tsvector` column (the `simple` configuration: no stemming, as SQLite's FTS5).

Tables are created unqualified, in the connection's `search_path` (by default the `public`
schema; `?options=-csearch_path%3Dname` in the URL picks another).
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg

from bastion.audit.chain import GENESIS_HASH, ChainedRow, Checkpoint, EventRow, chain_rows, encode_event
from bastion.audit.events import AuditPruned
from bastion.audit.query import EventQuery, where_clause
from bastion.audit.redact import PayloadPolicy
from bastion.audit.retention import Retention
from bastion.audit.store import AuditStoreError, Durability
from bastion.audit.writer import GroupCommitWriter

COLUMNS = ("seq", "time", "type", "agent", "server", "correlation_id", "tool", "verdict", "rule", "data", "hash")
CONNECT_TIMEOUT_S = 10
READ_BATCH = 2000
_MIGRATION_LOCK = "SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.bastion_audit_schema'))"

_V1 = (
    """CREATE TABLE events (
        seq BIGINT PRIMARY KEY, time DOUBLE PRECISION NOT NULL, type TEXT NOT NULL,
        agent TEXT, server TEXT, correlation_id TEXT, tool TEXT, verdict TEXT, rule TEXT,
        data TEXT NOT NULL, hash TEXT NOT NULL,
        tsv tsvector GENERATED ALWAYS AS
            (to_tsvector('simple'::regconfig, coalesce(tool, '') || ' ' || data)) STORED)""",
    "CREATE INDEX events_time ON events (time)",
    *(
        f"CREATE INDEX events_{column} ON events ({column}, seq)"
        for column in ("agent", "server", "tool", "type", "correlation_id", "verdict", "rule")
    ),
    "CREATE INDEX events_tsv ON events USING gin (tsv)",
    "CREATE TABLE audit_head (id INTEGER PRIMARY KEY CHECK (id = 1), seq BIGINT NOT NULL, hash TEXT NOT NULL)",
    f"INSERT INTO audit_head VALUES (1, 0, '{GENESIS_HASH}')",
    """CREATE TABLE audit_checkpoints (
        seq BIGINT PRIMARY KEY, hash TEXT NOT NULL, time DOUBLE PRECISION NOT NULL, removed BIGINT NOT NULL)""",
    "CREATE TABLE audit_health (id INTEGER PRIMARY KEY CHECK (id = 1), checked_at DOUBLE PRECISION NOT NULL)",
)
MIGRATIONS: tuple[tuple[str, ...], ...] = (_V1,)
"""`MIGRATIONS[n]` brings a database from schema version n to n + 1 (`audit_schema.version`)."""
SCHEMA_VERSION = len(MIGRATIONS)

_COPY = f"COPY events ({', '.join(COLUMNS)}) FROM STDIN"
_UPSERT_HEALTH = (
    "INSERT INTO audit_health (id, checked_at) VALUES (1, %s)"
    " ON CONFLICT (id) DO UPDATE SET checked_at = excluded.checked_at"
)


def redacted_url(url: str) -> str:
    """`url` without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


class PostgresBackend:
    """The PostgreSQL side of the shared write path (see `WriterBackend`).

    A batch nobody waits on, and every batch under `durability: process` (`fsync` false),
    commits with `synchronous_commit = off`: the server acknowledges before its WAL is
    flushed, which a crash of Bastion cannot undo (a crash of the database server can).
    """

    def __init__(self, url: str, *, fsync: bool = True) -> None:
        self.url = url
        self.description = redacted_url(url)
        self.fsync = fsync

    def connect(self) -> psycopg.Connection[Any]:
        conn = psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)
        try:
            migrate(conn, self.description)
        except BaseException:
            conn.close()
            raise
        return conn

    def append(self, conn: psycopg.Connection[Any], rows: list[EventRow], health: bool, sync: bool) -> None:
        with conn.transaction():
            if not (sync and self.fsync):
                conn.execute("SET LOCAL synchronous_commit = off")
            if rows:
                self._append_rows(conn, rows)
            if health:
                conn.execute(_UPSERT_HEALTH, (time.time(),))

    def tidy(self, conn: psycopg.Connection[Any]) -> None:
        """Nothing to do: the server manages its own WAL."""

    def _append_rows(self, conn: psycopg.Connection[Any], rows: list[EventRow]) -> None:
        head = conn.execute("SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE").fetchone()
        if head is None:
            raise AuditStoreError(f"audit log {self.description} has no chain head")
        chained = chain_rows(Checkpoint(head[0], head[1]), rows)
        with conn.cursor() as cursor, cursor.copy(_COPY) as copy:
            for item in chained:
                copy.write_row((item.seq, *item.row, item.hash))
        last = chained[-1]
        conn.execute("UPDATE audit_head SET seq = %s, hash = %s WHERE id = 1", (last.seq, last.hash))

    def prune(self, conn: psycopg.Connection[Any], retention: Retention, now: float, policy: PayloadPolicy) -> int:
        with conn.transaction():
            head = conn.execute("SELECT seq FROM audit_head WHERE id = 1 FOR UPDATE").fetchone()
            head_seq = int(head[0]) if head is not None else 0
            cut = head_seq - retention.max_events if retention.max_events is not None else 0
            cutoff = retention.cutoff(now)
            if cutoff is not None:
                by_age = _scalar(conn, "SELECT max(seq) FROM events WHERE time < %s", (cutoff,))
                cut = max(cut, int(by_age or 0))
            first = _scalar(conn, "SELECT min(seq) FROM events", ())
            if first is None or cut < int(first):
                return 0
            through_hash = str(_scalar(conn, "SELECT hash FROM events WHERE seq = %s", (cut,)))
            removed = conn.execute("DELETE FROM events WHERE seq <= %s", (cut,)).rowcount
            conn.execute("INSERT INTO audit_checkpoints VALUES (%s, %s, %s, %s)", (cut, through_hash, now, removed))
            event = AuditPruned(time=now, through_seq=cut, through_hash=through_hash, removed=removed)
            self._append_rows(conn, [encode_event(event, policy)])
        return int(removed)

    def discard(self, conn: psycopg.Connection[Any]) -> None:
        with contextlib.suppress(Exception):
            conn.close()


def migrate(conn: psycopg.Connection[Any], description: str) -> None:
    """Create or upgrade the schema, one replica at a time (an advisory lock)."""
    with conn.transaction():
        conn.execute(_MIGRATION_LOCK)
        conn.execute("CREATE TABLE IF NOT EXISTS audit_schema (version INTEGER NOT NULL)")
        found = _scalar(conn, "SELECT max(version) FROM audit_schema", ())
        version = int(found) if found is not None else 0
        if version > SCHEMA_VERSION:
            raise AuditStoreError(
                f"{description} has audit schema v{version}; this Bastion knows up to v{SCHEMA_VERSION}"
            )
        for statements in MIGRATIONS[version:]:
            for statement in statements:
                conn.execute(statement.encode())
        if version < SCHEMA_VERSION:
            conn.execute("DELETE FROM audit_schema")
            conn.execute("INSERT INTO audit_schema VALUES (%s)", (SCHEMA_VERSION,))


class PostgresAuditStore(GroupCommitWriter[psycopg.Connection[Any]]):
    """`AuditStore` on PostgreSQL."""

    def __init__(
        self,
        url: str,
        policy: PayloadPolicy | None = None,
        retention: Retention | None = None,
        *,
        durability: Durability = "power",
    ) -> None:
        super().__init__(PostgresBackend(url, fsync=durability == "power"), policy or PayloadPolicy(), retention)
        self.url = url
        self._reader: psycopg.Connection[Any] | None = None
        self._reader_lock = threading.Lock()

    async def close(self) -> None:
        """Commit everything queued, stop the writer, close every connection. Idempotent."""
        try:
            await super().close()
        finally:
            with self._reader_lock:
                if self._reader is not None:
                    self._reader.close()
                    self._reader = None

    @property
    def description(self) -> str:
        return self.backend.description

    def rows(
        self, query: EventQuery, *, newest_first: bool, cursor: int | None = None, limit: int | None = None
    ) -> Iterator[ChainedRow]:
        conditions, params = where_clause(query, "postgresql")
        if query.text is not None:
            conditions.append("tsv @@ plainto_tsquery('simple'::regconfig, %s)")
            params.append(query.text)
        if cursor is not None:
            conditions.append(f"seq {'<' if newest_first else '>'} %s")
            params.append(cursor)
        where = " WHERE " + " AND ".join(conditions) if conditions else ""
        sql = f"SELECT {', '.join(COLUMNS)} FROM events{where} ORDER BY seq {'DESC' if newest_first else 'ASC'}"
        if limit is not None:
            sql += " LIMIT %s"
            params.append(limit)
        for row in self._read(sql, params, stream=limit is None or limit > READ_BATCH):
            yield ChainedRow(row[0], EventRow(*row[1:10]), row[10])

    def count(self, query: EventQuery) -> int:
        conditions, params = where_clause(query, "postgresql")
        if query.text is not None:
            conditions.append("tsv @@ plainto_tsquery('simple'::regconfig, %s)")
            params.append(query.text)
        where = " WHERE " + " AND ".join(conditions) if conditions else ""
        found = _first(self._read(f"SELECT count(*) FROM events{where}", params))
        return int(found[0]) if found is not None else 0

    def chain_ends(self) -> tuple[Checkpoint | None, Checkpoint | None]:
        checkpoint = _first(self._read("SELECT seq, hash FROM audit_checkpoints ORDER BY seq DESC LIMIT 1", []))
        head = _first(self._read("SELECT seq, hash FROM audit_head WHERE id = 1", []))
        return (
            Checkpoint(int(checkpoint[0]), checkpoint[1]) if checkpoint is not None else None,
            Checkpoint(int(head[0]), head[1]) if head is not None else None,
        )

    def _read(self, sql: str, params: list[Any], *, stream: bool = False) -> Iterator[tuple[Any, ...]]:
        """Rows of `sql`. A page (`stream` False) is fetched on a reused connection; a stream
        reads through a server-side cursor on a connection of its own."""
        if not stream:
            yield from self._fetch(sql, params)
            return
        try:
            with psycopg.connect(self.url, connect_timeout=CONNECT_TIMEOUT_S) as conn:
                conn.read_only = True
                with conn.cursor(name=f"bastion_audit_{uuid.uuid4().hex[:8]}") as server_side:
                    server_side.itersize = READ_BATCH
                    server_side.execute(sql.encode(), params)
                    yield from server_side
        except psycopg.Error as exc:
            raise AuditStoreError(f"cannot read audit log {self.description}: {exc}") from exc

    def _fetch(self, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        with self._reader_lock:
            try:
                if self._reader is None or self._reader.closed:
                    self._reader = psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)
                return self._reader.execute(sql.encode(), params).fetchall()
            except psycopg.Error as exc:
                if self._reader is not None:
                    self._reader.close()
                    self._reader = None
                raise AuditStoreError(f"cannot read audit log {self.description}: {exc}") from exc


def _scalar(conn: psycopg.Connection[Any], sql: str, params: tuple[Any, ...]) -> Any:
    row = conn.execute(sql.encode(), params).fetchone()
    return row[0] if row is not None else None


def _first(rows: Iterator[tuple[Any, ...]]) -> tuple[Any, ...] | None:
    gen = iter(rows)
    try:
        return next(gen, None)
    finally:
        close: Callable[[], None] | None = getattr(gen, "close", None)
        if close is not None:
            close()

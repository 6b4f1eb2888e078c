"""The shared audit store: PostgreSQL, for several gateway replicas (`audit.url: postgresql://...`).

Writes are asynchronous, over psycopg 3's `AsyncConnection`: one writer task on the
gateway's event loop, group-committed (`audit/async_writer.py`). Each batch, in one
transaction, locks the single-row chain head (`SELECT ... FOR UPDATE`, which waits for
any other replica's append to commit and then reads the head it left), appends its events
with COPY, and moves the head: appends from every replica are thereby serialised and the
chain stays linear, each event in it once. Full-text search uses a generated `tsvector`
column (the `simple` configuration: no stemming, as SQLite's FTS5).

Reads (search, export, verify) are synchronous, for the CLI and worker threads
(`audit/postgres_reader.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from typing import Any

import psycopg

from bastion.audit.async_writer import AsyncGroupCommitWriter
from bastion.audit.chain import ChainedRow, Checkpoint, EventRow, chain_rows, encode_event
from bastion.audit.events import AuditPruned
from bastion.audit.postgres_reader import PostgresReader
from bastion.audit.postgres_schema import COLUMNS, migrate, redacted_url
from bastion.audit.query import EventQuery
from bastion.audit.redact import PayloadPolicy
from bastion.audit.retention import Retention
from bastion.audit.store import AuditStoreError, Durability

CONNECT_TIMEOUT_S = 10
CHAIN_IN_THREAD = 256
"""Batches larger than this are hashed in a worker thread, so the event loop stays responsive."""

_COPY = f"COPY events ({', '.join(COLUMNS)}) FROM STDIN"
_LOCK_HEAD = "SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE"
_SET_HEAD = "UPDATE audit_head SET seq = %s, hash = %s WHERE id = 1"
_UPSERT_HEALTH = (
    "INSERT INTO audit_health (id, checked_at) VALUES (1, %s)"
    " ON CONFLICT (id) DO UPDATE SET checked_at = excluded.checked_at"
)

AsyncConn = psycopg.AsyncConnection[Any]


class PostgresBackend:
    """The PostgreSQL side of the async write path (see `AsyncWriterBackend`).

    Under `durability: process` (`fsync` false) every batch commits with
    `synchronous_commit = off`: the server acknowledges before its WAL is flushed, which a
    crash of Bastion cannot undo (a crash of the database server can).
    """

    def __init__(self, url: str, *, fsync: bool = True) -> None:
        self.url = url
        self.description = redacted_url(url)
        self.fsync = fsync

    async def connect(self) -> AsyncConn:
        conn = await psycopg.AsyncConnection.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)
        try:
            await migrate(conn, self.description)
        except BaseException:
            await conn.close()
            raise
        return conn

    async def append(self, conn: AsyncConn, rows: list[EventRow], health: bool) -> None:
        async with conn.transaction():
            if not self.fsync:
                await conn.execute("SET LOCAL synchronous_commit = off")
            if rows:
                await self._append_rows(conn, rows)
            if health:
                await conn.execute(_UPSERT_HEALTH, (time.time(),))

    async def _append_rows(self, conn: AsyncConn, rows: list[EventRow]) -> None:
        head = await (await conn.execute(_LOCK_HEAD)).fetchone()
        if head is None:
            raise AuditStoreError(f"audit log {self.description} has no chain head")
        previous = Checkpoint(int(head[0]), head[1])
        if len(rows) > CHAIN_IN_THREAD:
            chained = await asyncio.to_thread(chain_rows, previous, rows)
        else:
            chained = chain_rows(previous, rows)
        async with conn.cursor() as cursor, cursor.copy(_COPY) as copy:
            for item in chained:
                await copy.write_row((item.seq, *item.row, item.hash))
        last = chained[-1]
        await conn.execute(_SET_HEAD, (last.seq, last.hash))

    async def prune(self, conn: AsyncConn, retention: Retention, now: float, policy: PayloadPolicy) -> int:
        async with conn.transaction():
            head = await _one(conn, "SELECT seq FROM audit_head WHERE id = 1 FOR UPDATE", ())
            head_seq = int(head) if head is not None else 0
            cut = head_seq - retention.max_events if retention.max_events is not None else 0
            cutoff = retention.cutoff(now)
            if cutoff is not None:
                by_age = await _one(conn, "SELECT max(seq) FROM events WHERE time < %s", (cutoff,))
                cut = max(cut, int(by_age or 0))
            first = await _one(conn, "SELECT min(seq) FROM events", ())
            if first is None or cut < int(first):
                return 0
            through_hash = str(await _one(conn, "SELECT hash FROM events WHERE seq = %s", (cut,)))
            removed = (await conn.execute("DELETE FROM events WHERE seq <= %s", (cut,))).rowcount
            await conn.execute(
                "INSERT INTO audit_checkpoints VALUES (%s, %s, %s, %s)", (cut, through_hash, now, removed)
            )
            event = AuditPruned(time=now, through_seq=cut, through_hash=through_hash, removed=removed)
            await self._append_rows(conn, [encode_event(event, policy)])
        return int(removed)

    async def discard(self, conn: AsyncConn) -> None:
        with contextlib.suppress(Exception):
            await conn.close()


class PostgresAuditStore(AsyncGroupCommitWriter[AsyncConn]):
    """`AuditStore` on PostgreSQL: async group-committed writes, synchronous reads."""

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
        self.reader = PostgresReader(url)

    async def close(self) -> None:
        """Commit everything queued, stop the writer, close every connection. Idempotent."""
        try:
            await super().close()
        finally:
            self.reader.close()

    @property
    def description(self) -> str:
        return self.backend.description

    def rows(
        self, query: EventQuery, *, newest_first: bool, cursor: int | None = None, limit: int | None = None
    ) -> Iterator[ChainedRow]:
        return self.reader.rows(query, newest_first=newest_first, cursor=cursor, limit=limit)

    def count(self, query: EventQuery) -> int:
        return self.reader.count(query)

    def chain_ends(self) -> tuple[Checkpoint | None, Checkpoint | None]:
        return self.reader.chain_ends()


async def _one(conn: AsyncConn, sql: str, params: tuple[Any, ...]) -> Any:
    row = await (await conn.execute(sql.encode(), params)).fetchone()
    return row[0] if row is not None else None

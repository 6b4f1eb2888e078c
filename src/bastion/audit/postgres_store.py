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

from bastion.audit.anchor import AuditAnchor, opening_check
from bastion.audit.async_writer import AsyncGroupCommitWriter
from bastion.audit.chain import ChainedRow, Checkpoint, EventRow, chain_rows, encode_event
from bastion.audit.events import AuditPruned
from bastion.audit.head import SignedHead
from bastion.audit.postgres_reader import PostgresReader
from bastion.audit.postgres_schema import COLUMNS, migrate
from bastion.audit.query import EventQuery
from bastion.audit.redact import PayloadPolicy
from bastion.audit.retention import Retention
from bastion.audit.store import AuditStoreError, Durability
from bastion.state.errors import redacted_url

CONNECT_TIMEOUT_S = 10
CHAIN_IN_THREAD = 256
"""Batches larger than this are hashed in a worker thread, so the event loop stays responsive."""

_COPY = f"COPY events ({', '.join(COLUMNS)}) FROM STDIN"
_LOCK_HEAD = "SELECT seq, hash, mac FROM audit_head WHERE id = 1 FOR UPDATE"
_SET_HEAD = "UPDATE audit_head SET seq = %s, hash = %s, mac = %s WHERE id = 1"
_LAST_CHECKPOINT = "SELECT seq, hash FROM audit_checkpoints ORDER BY seq DESC LIMIT 1"
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

    def __init__(self, url: str, *, fsync: bool = True, anchor: AuditAnchor | None = None) -> None:
        self.url = url
        self.anchor = anchor
        """Signs every head it commits and checks the one it chains onto (see `anchor.py`)."""
        self.description = redacted_url(url)
        self.fsync = fsync

    async def connect(self) -> AsyncConn:
        conn = await psycopg.AsyncConnection.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)
        try:
            await migrate(conn, self.description)
            if self.anchor is not None:
                await self._open_anchored(conn, self.anchor)
        except BaseException:
            await conn.close()
            raise
        return conn

    async def _open_anchored(self, conn: AsyncConn, anchor: AuditAnchor) -> None:
        """`opening_check` on the log, signing the head of a log that predates anchoring."""
        async with conn.transaction():
            found = await (await conn.execute(_LOCK_HEAD)).fetchone()
            if found is None:
                raise AuditStoreError(f"audit log {self.description} has no chain head")
            head = SignedHead(int(found[0]), found[1], found[2] or "")
            last = await (await conn.execute(_LAST_CHECKPOINT)).fetchone()
            start = Checkpoint(int(last[0]), last[1]) if last is not None else None
            seq_hashes: dict[int, str | None] = {}
            if (on_file := anchor.read_head_file()) is not None:
                seq_hashes[on_file.seq] = await _one(conn, "SELECT hash FROM events WHERE seq = %s", (on_file.seq,))
            adopted = opening_check(anchor, head, start, lambda seq: seq_hashes.get(seq))
            if adopted is not None:
                await conn.execute("UPDATE audit_head SET mac = %s WHERE id = 1", (adopted.mac,))

    async def append(self, conn: AsyncConn, rows: list[EventRow], health: bool) -> None:
        head = None
        async with conn.transaction():
            if not self.fsync:
                await conn.execute("SET LOCAL synchronous_commit = off")
            if rows:
                head = await self._append_rows(conn, rows)
            if health:
                await conn.execute(_UPSERT_HEALTH, (time.time(),))
        if head is not None and self.anchor is not None:
            self.anchor.committed(head)

    async def tidy(self, force: bool) -> None:
        """After a batch's callers are answered: leave the newest head in the head file (at most
        once per `HEAD_FILE_INTERVAL_S` unless `force`)."""
        if self.anchor is not None:
            await asyncio.to_thread(self.anchor.write_head_file, force=force)

    def housekeeping_due(self) -> float | None:
        return self.anchor.head_file_due() if self.anchor is not None else None

    async def _append_rows(self, conn: AsyncConn, rows: list[EventRow]) -> SignedHead:
        found = await (await conn.execute(_LOCK_HEAD)).fetchone()
        if found is None:
            raise AuditStoreError(f"audit log {self.description} has no chain head")
        head = SignedHead(int(found[0]), found[1], found[2] or "")
        if self.anchor is not None:
            self.anchor.check_chain_onto(head)
        previous = Checkpoint(head.seq, head.hash)
        if len(rows) > CHAIN_IN_THREAD:
            chained = await asyncio.to_thread(chain_rows, previous, rows)
        else:
            chained = chain_rows(previous, rows)
        async with conn.cursor() as cursor, cursor.copy(_COPY) as copy:
            for item in chained:
                await copy.write_row((item.seq, *item.row, item.hash))
        last = chained[-1]
        new = self.anchor.sign(last.seq, last.hash) if self.anchor is not None else SignedHead(last.seq, last.hash)
        await conn.execute(_SET_HEAD, (new.seq, new.hash, new.mac or None))
        return new

    async def prune(self, conn: AsyncConn, retention: Retention, now: float, policy: PayloadPolicy) -> int:
        removed, head = await self._prune(conn, retention, now, policy)
        if head is not None and self.anchor is not None:
            self.anchor.committed(head)
        return removed

    async def _prune(
        self, conn: AsyncConn, retention: Retention, now: float, policy: PayloadPolicy
    ) -> tuple[int, SignedHead | None]:
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
                return 0, None
            through_hash = str(await _one(conn, "SELECT hash FROM events WHERE seq = %s", (cut,)))
            removed = (await conn.execute("DELETE FROM events WHERE seq <= %s", (cut,))).rowcount
            await conn.execute(
                "INSERT INTO audit_checkpoints VALUES (%s, %s, %s, %s)", (cut, through_hash, now, removed)
            )
            event = AuditPruned(time=now, through_seq=cut, through_hash=through_hash, removed=removed)
            head = await self._append_rows(conn, [encode_event(event, policy)])
        return int(removed), head

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
        anchor: AuditAnchor | None = None,
    ) -> None:
        backend = PostgresBackend(url, fsync=durability == "power", anchor=anchor)
        super().__init__(backend, policy or PayloadPolicy(), retention)
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

    def signed_head(self) -> SignedHead | None:
        return self.reader.signed_head()


async def _one(conn: AsyncConn, sql: str, params: tuple[Any, ...]) -> Any:
    row = await (await conn.execute(sql.encode(), params)).fetchone()
    return row[0] if row is not None else None

"""Reading a PostgreSQL audit log: search, export and verify, synchronously (any thread, no event loop).

The CLI, and the gateway's worker threads, read through here, over psycopg 3's
blocking API. A page (a search) is fetched on one reused connection; a stream (an export,
a verify) is one statement through a server-side cursor on a connection of its own, so
one snapshot however long it runs, read ahead by a thread a few thousand rows at a time.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg

from bastion.audit.chain import ChainedRow, Checkpoint, chained_row
from bastion.audit.head import SignedHead
from bastion.audit.postgres_schema import COLUMNS
from bastion.audit.query import EventQuery, paged, where_clause
from bastion.audit.store import AuditStoreError
from bastion.state.errors import redacted_url

CONNECT_TIMEOUT_S = 10
READ_BATCH = 2000
"""Pages of up to this many rows are fetched at once; longer reads stream."""
STREAM_BATCH = 5000
PREFETCH_BATCHES = 2
_TEXT_MATCH = "tsv @@ plainto_tsquery('simple'::regconfig, %s)"


class PostgresReader:
    """`AuditReader` on a PostgreSQL log. Thread-safe."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.description = redacted_url(url)
        self._conn: psycopg.Connection[Any] | None = None
        self._lock = threading.Lock()

    def close(self) -> None:
        """Close the reused connection (streams close their own)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def rows(
        self, query: EventQuery, *, newest_first: bool, cursor: int | None = None, limit: int | None = None
    ) -> Iterator[ChainedRow]:
        conditions, params = _conditions(query)
        select = f"SELECT {', '.join(COLUMNS)} FROM events"
        sql = paged(select, conditions, params, "postgresql", newest_first=newest_first, cursor=cursor, limit=limit)
        rows = self._stream(sql, params) if limit is None or limit > READ_BATCH else iter(self._fetch(sql, params))
        yield from map(chained_row, rows)

    def count(self, query: EventQuery) -> int:
        conditions, params = _conditions(query)
        where = " WHERE " + " AND ".join(conditions) if conditions else ""
        found = self._fetch(f"SELECT count(*) FROM events{where}", params)
        return int(found[0][0]) if found else 0

    def chain_ends(self) -> tuple[Checkpoint | None, Checkpoint | None]:
        checkpoint = self._fetch("SELECT seq, hash FROM audit_checkpoints ORDER BY seq DESC LIMIT 1", [])
        head = self._fetch("SELECT seq, hash FROM audit_head WHERE id = 1", [])
        return (
            Checkpoint(int(checkpoint[0][0]), checkpoint[0][1]) if checkpoint else None,
            Checkpoint(int(head[0][0]), head[0][1]) if head else None,
        )

    def signed_head(self) -> SignedHead | None:
        head = self._fetch("SELECT seq, hash, mac FROM audit_head WHERE id = 1", [])
        return SignedHead(int(head[0][0]), head[0][1], head[0][2] or "") if head else None

    def _stream(self, sql: str, params: list[Any]) -> Iterator[tuple[Any, ...]]:
        """Rows of `sql` through a server-side cursor (one statement: one snapshot), fetched
        `STREAM_BATCH` at a time by a thread of their own, which fetches the next batch while
        the caller works through the last: the server's work and the caller's overlap, and
        batches are parsed in C (cheaper per row than COPY's row by row)."""
        batches: queue.Queue[list[tuple[Any, ...]] | BaseException] = queue.Queue(maxsize=PREFETCH_BATCHES)
        stop = threading.Event()

        def fetch() -> None:
            try:
                with psycopg.connect(self.url, connect_timeout=CONNECT_TIMEOUT_S) as conn:
                    conn.read_only = True
                    with conn.cursor(name=f"bastion_audit_{uuid.uuid4().hex[:8]}", binary=True) as cursor:
                        cursor.execute(sql.encode(), params)
                        while not stop.is_set():
                            rows = cursor.fetchmany(STREAM_BATCH)
                            batches.put(rows)  # waits while the caller is PREFETCH_BATCHES behind
                            if not rows:
                                return
            except BaseException as exc:  # handed to the caller, who raises it
                batches.put(exc)

        threading.Thread(target=fetch, name="bastion-audit-read", daemon=True).start()
        try:
            while True:
                batch = batches.get()
                if isinstance(batch, psycopg.Error):
                    raise AuditStoreError(f"cannot read audit log {self.description}: {batch}") from batch
                if isinstance(batch, BaseException):
                    raise batch
                if not batch:
                    return
                yield from batch
        finally:  # the caller is done (or stopped early): let the fetcher finish its put and leave
            stop.set()
            with contextlib.suppress(queue.Empty):
                while True:
                    batches.get_nowait()

    def _fetch(self, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)
                return self._conn.execute(sql.encode(), params).fetchall()
            except psycopg.Error as exc:
                if self._conn is not None:
                    self._conn.close()
                    self._conn = None
                raise AuditStoreError(f"cannot read audit log {self.description}: {exc}") from exc


def _conditions(query: EventQuery) -> tuple[list[str], list[Any]]:
    conditions, params = where_clause(query, "postgresql")
    if query.text is not None:
        conditions.append(_TEXT_MATCH)
        params.append(query.text)
    return conditions, params

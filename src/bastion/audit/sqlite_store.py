"""The embedded audit store: one SQLite file, written by one thread, group-committed.

Every write goes through a queue to a single writer thread that owns the only writing
connection. The writer takes everything queued, writes it in one transaction, commits
(fsync: `synchronous=FULL`), then wakes the callers of that batch. Many concurrent durable
writes therefore cost a few fsyncs, not one each. Waiters are asyncio futures, resolved
with `loop.call_soon_threadsafe`, so awaiting a commit never blocks the event loop (asyncio
backend of anyio only).

A failed batch fails its waiters with `AuditStoreError`; the writer then drops its
connection and opens a fresh one for the next batch, so the store recovers by itself once
the disk does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from bastion.audit.export import iso_time, serialise_arguments
from bastion.audit.store import AuditStoreError
from bastion.model import CallFinished, CallStarted

logger = logging.getLogger(__name__)

MAX_BATCH = 10_000
"""Most writes committed in one transaction; the rest wait for the next one."""
BUSY_TIMEOUT_MS = 5_000
CHECK_WRITABLE_TIMEOUT_S = 2.0


def _migrate_to_v1(conn: sqlite3.Connection) -> None:
    conn.execute(
        """CREATE TABLE calls (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            call_id TEXT NOT NULL UNIQUE,
            time REAL NOT NULL,
            agent TEXT, server TEXT, method TEXT NOT NULL DEFAULT '', tool TEXT,
            arguments TEXT, transport TEXT NOT NULL DEFAULT '',
            outcome TEXT NOT NULL DEFAULT 'pending',
            is_error INTEGER, result_size INTEGER, error TEXT, check_name TEXT,
            latency_ms REAL, finished_at REAL)"""
    )
    conn.execute("CREATE INDEX calls_time ON calls(time)")
    conn.execute("CREATE INDEX calls_agent_time ON calls(agent, time)")
    conn.execute("CREATE INDEX calls_server_time ON calls(server, time)")
    conn.execute("CREATE TABLE _health (id INTEGER PRIMARY KEY CHECK (id = 1), checked_at REAL NOT NULL)")


MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (_migrate_to_v1,)
"""`MIGRATIONS[n]` brings a database from `PRAGMA user_version` n to n + 1."""
SCHEMA_VERSION = len(MIGRATIONS)

_INSERT_START = (
    "INSERT INTO calls (call_id, time, agent, server, method, tool, arguments, transport)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
# An upsert, should a finish ever reach the writer before its start.
_UPSERT_FINISH = (
    "INSERT INTO calls (call_id, time, outcome, is_error, result_size, error, check_name, latency_ms, finished_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (call_id) DO UPDATE SET outcome = excluded.outcome,"
    " is_error = excluded.is_error, result_size = excluded.result_size, error = excluded.error,"
    " check_name = excluded.check_name, latency_ms = excluded.latency_ms, finished_at = excluded.finished_at"
)
_UPSERT_HEALTH = (
    "INSERT INTO _health (id, checked_at) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET checked_at = excluded.checked_at"
)
_SELECT_EXPORT = (
    "SELECT call_id, time, agent, server, method, tool, arguments, transport, outcome, is_error,"
    " result_size, error, check_name, latency_ms FROM calls ORDER BY seq"
)


@dataclass(slots=True)
class _Job:
    """One queued write (`sql`), or a marker (`sql is None`) for flush, open and close."""

    sql: str | None
    params: tuple[Any, ...] = ()
    waiter: asyncio.Future[int] | None = None
    stop: bool = False
    error: str | None = None


class SqliteAuditStore:
    """`AuditStore` on a SQLite file (WAL, `synchronous=FULL`), group-committed by one writer thread.

    `commits` counts committed transactions and `failed_writes` the writes that were not
    committed; both are for tests, benchmarks and metrics.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.commits = 0
        self.failed_writes = 0
        self._queue: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._accepting = False
        self._closed = False
        self._thread: threading.Thread | None = None
        self._conn: sqlite3.Connection | None = None

    async def open(self) -> None:
        """Create the file and schema (migrating an older one) and start the writer thread."""
        if self._thread is not None:
            raise AuditStoreError(f"audit store {self.path} is already opened")
        ready: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._thread = threading.Thread(
            target=self._run, args=(_Job(None, waiter=ready),), name="bastion-audit-writer", daemon=True
        )
        self._thread.start()
        try:
            await ready
        except AuditStoreError:
            self._thread = None
            raise
        with self._lock:
            self._accepting = True

    async def close(self) -> None:
        """Commit everything queued, stop the writer and close the connection. Idempotent.

        Raises `AuditStoreError` (after closing) when the final writes could not be committed.
        """
        with self._lock:
            thread, already_closed = self._thread, self._closed
            self._closed = True
            self._accepting = False
            if already_closed or thread is None or not thread.is_alive():
                return
            stopped: asyncio.Future[int] = asyncio.get_running_loop().create_future()
            self._queue.put(_Job(None, waiter=stopped, stop=True))
        try:
            await stopped
        finally:
            await anyio.to_thread.run_sync(thread.join)

    async def start(self, event: CallStarted, *, durable: bool = True) -> None:
        """Record a request as pending. With `durable`, return only once it is committed."""
        params = (event.call_id, event.time, event.agent, event.server, event.method, event.tool)
        await self._write(_INSERT_START, (*params, serialise_arguments(event.arguments), event.transport), wait=durable)

    async def finish(self, event: CallFinished) -> None:
        """Complete a request's record. Returns once queued; the commit is grouped with others."""
        finished_at = time.time()
        is_error = None if event.is_error is None else int(event.is_error)
        params = (event.call_id, finished_at, str(event.outcome), is_error, event.result_size, event.error)
        await self._write(_UPSERT_FINISH, (*params, event.check, event.latency_ms, finished_at), wait=False)

    async def flush(self) -> None:
        """Wait until everything queued so far is committed; raise if any of it failed."""
        failed_before = self.failed_writes
        failed_after = await self._submit(_Job(None, waiter=asyncio.get_running_loop().create_future()))
        if failed_after > failed_before:
            raise AuditStoreError(f"{failed_after - failed_before} audit writes to {self.path} were not committed")

    async def check_writable(self) -> bool:
        """Whether a real write round-trips through the writer within 2 seconds."""
        with anyio.move_on_after(CHECK_WRITABLE_TIMEOUT_S):
            try:
                await self._write(_UPSERT_HEALTH, (time.time(),), wait=True)
            except AuditStoreError:
                return False
            return True
        return False

    def export(self) -> Iterator[dict[str, Any]]:
        """Every record, oldest first, read through a read-only connection of its own.

        Rows are streamed (the connection lives as long as the iteration), so exporting a
        large log takes bounded memory; it may run in any thread while the writer works.
        """
        try:
            conn = sqlite3.connect(self.path.resolve().as_uri() + "?mode=ro", uri=True, check_same_thread=False)
        except sqlite3.Error as exc:
            raise AuditStoreError(f"cannot read audit log {self.path}: {exc}") from exc
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            for row in conn.execute(_SELECT_EXPORT):
                yield _record(row)
        except sqlite3.Error as exc:
            raise AuditStoreError(f"cannot read audit log {self.path}: {exc}") from exc
        finally:
            conn.close()

    async def _write(self, sql: str, params: tuple[Any, ...], *, wait: bool) -> None:
        waiter = asyncio.get_running_loop().create_future() if wait else None
        await self._submit(_Job(sql, params, waiter))

    async def _submit(self, job: _Job) -> int:
        with self._lock:
            if not self._accepting:
                state = "closed" if self._closed else "not opened"
                raise AuditStoreError(f"audit store {self.path} is {state}")
            if self._thread is None or not self._thread.is_alive():
                raise AuditStoreError(f"audit writer for {self.path} has stopped")
            self._queue.put(job)
        return 0 if job.waiter is None else await job.waiter

    # The writer thread. Everything below runs there, and only there touches `_conn`.

    def _run(self, ready: _Job) -> None:
        try:
            self._conn = self._connect()
        except Exception as exc:  # any failure must reach `open()`, which is waiting
            ready.error = f"cannot open audit log {self.path}: {exc}"
            self._settle([ready])
            return
        self._settle([ready])
        stopping = False
        while not stopping:
            batch = [self._queue.get()]
            while len(batch) < MAX_BATCH and not batch[-1].stop:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self._commit(batch)
            stopping = batch[-1].stop
            if stopping and self._conn is not None:
                self._conn.close()
                self._conn = None
            self._settle(batch)

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, isolation_level=None)
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode != "wal":
                logger.warning("audit log %s: journal mode is %s, not WAL", self.path, mode)
            conn.execute("PRAGMA synchronous = FULL")  # in WAL, every commit fsyncs the log
            _migrate(conn, self.path)
        except BaseException:
            conn.close()
            raise
        return conn

    def _commit(self, batch: list[_Job]) -> None:
        writes = [(job, job.sql) for job in batch if job.sql is not None]
        if not writes:
            return
        try:
            conn = self._conn if self._conn is not None else self._connect()
            self._conn = conn
            conn.execute("BEGIN IMMEDIATE")
            for job, sql in writes:
                try:
                    conn.execute(sql, job.params)
                # This record only (a reused call_id, a value sqlite cannot bind): the others commit.
                except (sqlite3.IntegrityError, sqlite3.InterfaceError) as exc:
                    job.error = f"audit write rejected by {self.path}: {exc}"
                    self.failed_writes += 1
            conn.execute("COMMIT")
            self.commits += 1
        except Exception as exc:  # whatever it is, the writer must live on and answer the waiters
            self._drop_connection()
            message = f"audit write to {self.path} failed, {len(writes)} records not committed: {exc}"
            logger.error("%s", message)
            self.failed_writes += sum(1 for job, _ in writes if job.error is None)
            for job in batch:
                job.error = message

    def _drop_connection(self) -> None:
        if self._conn is None:
            return
        # Nothing to roll back, or the connection is unusable: either way it is replaced.
        with contextlib.suppress(sqlite3.Error):
            self._conn.execute("ROLLBACK")
        with contextlib.suppress(sqlite3.Error):
            self._conn.close()
        self._conn = None

    def _settle(self, batch: list[_Job]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[_Job]] = {}
        for job in batch:
            if job.waiter is not None:
                by_loop.setdefault(job.waiter.get_loop(), []).append(job)
        for loop, jobs in by_loop.items():
            with contextlib.suppress(RuntimeError):  # that event loop is closed: nobody waits any more
                loop.call_soon_threadsafe(_resolve, jobs, self.failed_writes)


def _resolve(jobs: list[_Job], failed_writes: int) -> None:
    for job in jobs:
        if job.waiter is None or job.waiter.done():  # done: the caller was cancelled
            continue
        if job.error is None:
            job.waiter.set_result(failed_writes)
        else:
            job.waiter.set_exception(AuditStoreError(job.error))


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        version: int = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise AuditStoreError(f"{path} has audit schema v{version}; this Bastion knows up to v{SCHEMA_VERSION}")
        for migration in MIGRATIONS[version:]:
            migration(conn)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _record(row: tuple[Any, ...]) -> dict[str, Any]:
    call_id, at, agent, server, method, tool, arguments, transport, outcome, is_error, size, error, check, ms = row
    return {
        "call_id": call_id,
        "time": iso_time(at),
        "agent": agent,
        "server": server,
        "method": method,
        "tool": tool,
        "arguments": None if arguments is None else json.loads(arguments),
        "transport": transport,
        "outcome": outcome,
        "is_error": None if is_error is None else bool(is_error),
        "result_size": size,
        "error": error,
        "check": check,
        "latency_ms": ms,
    }

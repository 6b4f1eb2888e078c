"""The write path for an audit backend with an async driver: one writer task, group-committed.

The counterpart of `audit/writer.py` (a thread, for SQLite's blocking driver) for a
database reached through asyncio (PostgreSQL, psycopg 3's `AsyncConnection`). The API and
its promises are the same: callers encode their event (redaction included) in their own
thread and queue the row; one writer task, on the event loop that opened the store, takes
everything queued, appends it to the chain in one transaction and commits, then wakes the
callers of that batch. While a batch is in flight (the network round trips are awaited,
the loop is free) the next one gathers, so many concurrent durable writes cost a few
commits, not one each.

Jobs go into one thread-safe FIFO at the moment they are submitted, from the loop or any
other thread (`record_nowait` from a worker thread wakes the task with
`call_soon_threadsafe`), so a flush waits for everything submitted before it, whichever
thread submitted it. Waiters on another event loop are resolved on their own loop.

A failed batch fails its waiters with `AuditStoreError`; the writer then drops its
connection and opens a fresh one for the next batch, so the store recovers by itself once
the database does. Retention runs in the writer task too, when due.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import threading
import time
from typing import Generic, Protocol, TypeVar

from bastion.audit.chain import EventRow, encode_event
from bastion.audit.events import AuditEvent
from bastion.audit.redact import PayloadPolicy
from bastion.audit.retention import Retention
from bastion.audit.store import AuditStoreError
from bastion.audit.writer_front import (
    MAX_BATCH,
    PRUNE_INTERVAL_S,
    Job,
    JobKind,
    WriterFront,
    fail,
    resolve,
    settled,
)

logger = logging.getLogger(__name__)

ConnT = TypeVar("ConnT")


class AsyncWriterBackend(Protocol[ConnT]):
    """What a database with an async driver contributes to the write path. Runs in the writer task only."""

    description: str
    """Where the log is, for messages (a URL without its password)."""

    async def connect(self) -> ConnT:
        """A fresh writing connection, with the schema created or migrated."""

    async def append(self, conn: ConnT, rows: list[EventRow], health: bool) -> None:
        """In one transaction: chain and insert `rows`, touch the health row if `health`, commit."""

    async def prune(self, conn: ConnT, retention: Retention, now: float, policy: PayloadPolicy) -> int:
        """Apply `retention` in one transaction; return how many events were removed."""

    async def tidy(self, force: bool) -> None:
        """Housekeeping after a batch, once its waiters are answered (`force`: the store is closing)."""

    def housekeeping_due(self) -> float | None:
        """When (`time.monotonic`) `tidy` has something to do; None: nothing."""

    async def discard(self, conn: ConnT) -> None:
        """Close `conn` (rolling back whatever is open), ignoring errors."""


class AsyncGroupCommitWriter(WriterFront, Generic[ConnT]):
    """The writer task and the API in front of it (see the module docstring)."""

    def __init__(
        self, backend: AsyncWriterBackend[ConnT], policy: PayloadPolicy, retention: Retention | None = None
    ) -> None:
        self.backend = backend
        self.policy = policy
        self.retention = retention
        self.commits = 0
        self.failed_writes = 0
        self._jobs: collections.deque[Job] = collections.deque()
        self._lock = threading.Lock()
        self._accepting = False
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._conn: ConnT | None = None
        self._next_prune = 0.0

    @property
    def description(self) -> str:
        return self.backend.description

    async def open(self) -> None:
        """Connect (creating or migrating the schema) and start the writer task on this event loop."""
        if self._task is not None or self._loop is not None:
            raise AuditStoreError(f"audit store {self.backend.description} is already opened")
        self._loop = asyncio.get_running_loop()
        try:
            self._conn = await self.backend.connect()
        except Exception as exc:
            self._loop = None
            raise AuditStoreError(f"cannot open audit log {self.backend.description}: {exc}") from exc
        self._loop_thread = threading.get_ident()
        self._wake = asyncio.Event()
        self._task = self._loop.create_task(self._run(), name="bastion-audit-writer")
        self._task.add_done_callback(self._writer_done)
        with self._lock:
            self._accepting = True

    async def close(self) -> None:
        """Commit everything queued, stop the writer and close the connection. Idempotent."""
        await settled()
        with self._lock:
            task, already_closed = self._task, self._closed
            self._closed = True
            self._accepting = False
            if already_closed or task is None or task.done():
                return
            stopped: asyncio.Future[int] = asyncio.get_running_loop().create_future()
            self._enqueue(Job(JobKind.STOP, waiter=stopped))
        try:
            await stopped
        finally:
            if asyncio.get_running_loop() is self._loop:
                await asyncio.shield(task)

    async def record(self, event: AuditEvent, *, durable: bool = True, alone: bool = False) -> None:
        """Append `event`; with `durable`, return only once it is committed (`alone` changes nothing here)."""
        row = encode_event(event, self.policy)
        waiter = asyncio.get_running_loop().create_future() if durable else None
        await self._submit_and_wait(Job(JobKind.EVENT, row, waiter))

    @property
    def queue_depth(self) -> int:
        return len(self._jobs)

    def _submit(self, job: Job) -> None:
        with self._lock:
            if not self._accepting:
                state = "closed" if self._closed else "not opened"
                raise AuditStoreError(f"audit store {self.backend.description} is {state}")
            if self._task is None or self._task.done():
                raise AuditStoreError(f"audit writer for {self.backend.description} has stopped")
            self._enqueue(job)

    def _enqueue(self, job: Job) -> None:
        """Queue `job` and wake the writer; the caller holds `_lock`."""
        assert self._loop is not None
        assert self._wake is not None
        if threading.get_ident() == self._loop_thread:
            self._jobs.append(job)
            self._wake.set()
            return
        if self._loop.is_closed():
            raise AuditStoreError(f"audit writer for {self.backend.description} has stopped")
        self._jobs.append(job)
        try:
            self._loop.call_soon_threadsafe(self._wake.set)
        except RuntimeError as exc:  # the loop closed just now: nothing will ever write this
            raise AuditStoreError(f"audit writer for {self.backend.description} has stopped") from exc

    async def _submit_and_wait(self, job: Job) -> int:
        self._submit(job)
        return 0 if job.waiter is None else await job.waiter

    # The writer task. Everything below runs there, and only there touches `_conn`.

    async def _run(self) -> None:
        assert self._wake is not None
        try:
            while True:
                await self._maybe_prune(forced=False)
                await self._tidy(force=False)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._until_next_deadline())
                self._wake.clear()
                while self._jobs:
                    batch = [self._jobs.popleft()]
                    while self._jobs and len(batch) < MAX_BATCH and batch[-1].kind is not JobKind.STOP:
                        batch.append(self._jobs.popleft())
                    if await self._handle(batch):
                        return
                    await self._tidy(force=False)
        finally:  # stopped, or cancelled with its event loop: the connection goes either way
            await self._drop_connection()

    async def _handle(self, batch: list[Job]) -> bool:
        """Commit `batch`, prune if asked, answer its waiters. True when it ends with STOP."""
        stopping = batch[-1].kind is JobKind.STOP
        try:
            await self._commit(batch)
            if any(job.kind is JobKind.PRUNE for job in batch):
                await self._maybe_prune(forced=True, jobs=[j for j in batch if j.kind is JobKind.PRUNE])
            if stopping:
                await self._drop_connection()
                await self._tidy(force=True)
        except BaseException:  # cancelled (the loop is going away): nothing of this batch is known committed
            fail(batch, f"audit writer for {self.backend.description} was stopped")
            raise
        finally:
            self._settle(batch)
        return stopping

    def _writer_done(self, task: asyncio.Task[None]) -> None:
        """The writer task ended: fail whatever is still queued, so no caller waits forever."""
        with self._lock:  # `_submit` sees the task done from now on
            left = list(self._jobs)
            self._jobs.clear()
        if not task.cancelled() and task.exception() is not None:
            logger.error("audit writer for %s died: %s", self.backend.description, task.exception())
        fail(left, f"audit writer for {self.backend.description} has stopped")
        self._settle(left)

    def _until_next_deadline(self) -> float | None:
        """How long the writer may sleep: until retention is due, or the backend's housekeeping."""
        deadlines = [] if self.retention is None or not self.retention.enabled else [self._next_prune]
        if (housekeeping := self.backend.housekeeping_due()) is not None:
            deadlines.append(housekeeping)
        return max(0.01, min(deadlines) - time.monotonic()) if deadlines else None

    async def _maybe_prune(self, *, forced: bool, jobs: list[Job] | None = None) -> None:
        if self.retention is None or not self.retention.enabled:
            return
        if not forced and time.monotonic() < self._next_prune:
            return
        self._next_prune = time.monotonic() + PRUNE_INTERVAL_S
        try:
            conn = await self._connection()
            removed = await self.backend.prune(conn, self.retention, time.time(), self.policy)
            if removed:
                logger.info("audit retention removed %d event(s) from %s", removed, self.backend.description)
        except Exception as exc:  # retention must never stop the writer
            await self._drop_connection()
            logger.error("audit retention on %s failed: %s", self.backend.description, exc)
            for job in jobs or []:
                job.error = f"audit retention failed: {exc}"

    async def _connection(self) -> ConnT:
        if self._conn is None:
            self._conn = await self.backend.connect()
        return self._conn

    async def _commit(self, batch: list[Job]) -> None:
        rows = [job.row for job in batch if job.row is not None]
        health = any(job.kind is JobKind.HEALTH for job in batch)
        if not rows and not health:
            return
        try:
            await self.backend.append(await self._connection(), rows, health)
            self.commits += 1
        except Exception as exc:  # whatever it is, the writer must live on and answer the waiters
            await self._drop_connection()
            message = f"audit write to {self.backend.description} failed, {len(rows)} events not committed: {exc}"
            logger.error("%s", message)
            self.failed_writes += len(rows)
            for job in batch:
                if job.kind in (JobKind.EVENT, JobKind.HEALTH):
                    job.error = message

    async def _tidy(self, *, force: bool) -> None:
        """The backend's housekeeping after a batch (`force`: closing); it never stops the writer."""
        try:
            await self.backend.tidy(force)
        except Exception as exc:
            logger.warning("audit log %s housekeeping failed: %s", self.backend.description, exc)

    async def _drop_connection(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await self.backend.discard(conn)

    def _settle(self, batch: list[Job]) -> None:
        for job in batch:
            waiter = job.waiter
            if waiter is None:
                continue
            loop = waiter.get_loop()
            if loop is self._loop:
                resolve(job, self.failed_writes)
            else:
                with contextlib.suppress(RuntimeError):  # that event loop is closed: nobody waits any more
                    loop.call_soon_threadsafe(resolve, job, self.failed_writes)

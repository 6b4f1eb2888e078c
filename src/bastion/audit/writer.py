"""The write path every audit backend shares: one writer thread, fed by a queue, group-committed.

Callers encode their event (redaction included) in their own thread and queue the row. The
writer takes everything queued, appends it to the chain in one transaction (the backend
reads the chain head under its write lock, so other processes and replicas interleave
safely), commits, then wakes the callers of that batch. Many concurrent durable writes
therefore cost a few commits, not one each.

Events nobody waits on (`durable=False`, `record_nowait`) linger up to `LINGER_S` so that
they ride along with the next commit someone does wait on (a call's verdict and completion
go out with the next call's write-ahead record): one commit per call instead of three,
and a write-ahead record never queues behind a commit of events nobody waits for. Only a
batch that someone waits on (a durable write, a flush) is synced to stable storage before it
is acknowledged; lingering events committed on their own are not fsynced, and the next
synced commit puts them on disk. The writer keeps its own deadline for lingering events
while it is busy (it watches for `LINGER_S` after each commit): only the first lingering
event after an idle spell wakes it, not one event per call.

With `inline` (SQLite), a durable write that finds the writer idle and the database free
commits on the caller's own thread: two thread hand-offs (and, on a busy machine, two trips
through the scheduler and the GIL) cost more than the commit itself. Under `durability:
process` a commit does not wait for the disk, so every such write does so. Under `power`
(`inline_waits_for_disk`) the commit's fsync would hold the caller's event loop, so only a
write whose caller says it is `alone` (no other request in flight: nothing to do meanwhile,
and nobody to group-commit with) is made inline; the others go to the writer thread, which
group-commits them. When such commits are slower than `INLINE_SLOW_S` on a moving average (a
slow or busy disk, not one slow commit among quick ones: a virtual machine's fsync has a long
tail), they all go to the writer thread for `INLINE_BACKOFF_S`, so the event loop (the
dashboard, health checks, other agents' requests) never waits long on an fsync. When the writer is busy, or
another process holds the database's write lock, it goes through the queue as usual (it
never waits on the caller's thread), so concurrent writes are still group-committed.
`_conn_lock` keeps the caller and the writer thread apart. When the backend `pends_inline`
(SQLite under `power`), an inline fsynced commit puts its record alone in a table of records waiting to be
chained (`sqlite_pending.py`): the writer thread's next commit, due within `LINGER_S` like
lingering events, chains them first, then what lingers. A call's own events keep their order
(its write-ahead record comes first); a record may be chained ahead of an earlier call's
lingering verdict or completion, as under concurrency.

Waiters are asyncio futures, resolved with `loop.call_soon_threadsafe`, so awaiting a
commit never blocks the event loop (asyncio backend of anyio only).

The backend's housekeeping (`tidy`) runs with `_conn_lock` held; a checkpoint it asks for runs
after, without it (`checkpoint`, on the backend's own connection), so a caller's inline commit
is not sent to the queue while the checkpoint syncs the log and the database.

A failed batch fails its waiters with `AuditStoreError`; the writer then drops its
connection and opens a fresh one for the next batch, so the store recovers by itself once
the database does. Retention runs in the writer too, when due.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

import anyio

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
    resolve,
    settled,
)

logger = logging.getLogger(__name__)

LINGER_S = 0.02
"""Longest an event nobody waits on stays queued before it is committed on its own."""
INLINE_SLOW_S = 0.002
"""When lone durable commits made inline under `power` take longer than this on a moving
average (`INLINE_WEIGHT`: a slow disk, a busy one), the next ones go to the writer thread for
`INLINE_BACKOFF_S`: the event loop is never held by slow fsyncs for long. One commit alone
bars them only when it is over `INLINE_SLOW_S / INLINE_WEIGHT` (8 ms)."""
PENDING_RETRY_S = 1.0
"""After a commit that was to chain pending records failed, the next try is at least this far off
(any commit meanwhile chains them too)."""
INLINE_WEIGHT = 0.25
"""The weight of the newest inline commit's time in the moving average."""
INLINE_BACKOFF_S = 5.0
ConnT = TypeVar("ConnT")

InlineAppend = Callable[[ConnT, list[EventRow]], bool]
"""Commits rows at once if the database is free; False (nothing written) when it would have to wait."""


class WriterBackend(Protocol[ConnT]):
    """What a database contributes to the shared write path. Runs in the writer thread only."""

    description: str
    """Where the log is, for messages (a path, or a URL without its password)."""

    pends_inline: bool
    """Its `inline` append leaves the row pending, for the next commit to chain (`sqlite_pending.py`)."""

    def connect(self) -> ConnT:
        """A fresh writing connection, with the schema created or migrated."""

    def append(self, conn: ConnT, rows: list[EventRow], health: bool, sync: bool) -> None:
        """In one transaction: chain and insert `rows`, touch the health row if `health`, commit.

        `sync`: someone waits on this batch, so the commit must be as durable as the store is
        configured to make it. Without it the commit may return before the disk has it
        (it still survives a crash of this process once committed)."""

    def prune(self, conn: ConnT, retention: Retention, now: float, policy: PayloadPolicy) -> int:
        """Apply `retention` in one transaction; return how many events were removed."""

    def discard(self, conn: ConnT) -> None:
        """Roll back whatever is open and close `conn`, ignoring errors."""

    def tidy(self, conn: ConnT, idle: bool) -> bool:
        """Housekeeping after a batch, once its waiters are woken (so off their critical path);
        `idle`: the writer has nothing else to do, so whatever housekeeping waits is due now.
        True: a checkpoint is due, which the writer makes (`checkpoint`) once it has let go of `conn`."""

    def checkpoint(self) -> None:
        """Checkpoint the log without the writing connection (inline commits go on meanwhile)."""

    def release(self) -> None:
        """Close what `checkpoint` opened (the writer thread is stopping, or it failed)."""

    def housekeeping_due(self) -> float | None:
        """When (`time.monotonic`) `tidy` has something to do that must not wait for the next
        write (the audit head file); None: nothing."""


class GroupCommitWriter(WriterFront, Generic[ConnT]):
    """The writer thread and the async API in front of it (see the module docstring)."""

    def __init__(
        self,
        backend: WriterBackend[ConnT],
        policy: PayloadPolicy,
        retention: Retention | None = None,
        *,
        linger_s: float = LINGER_S,
        inline: InlineAppend[ConnT] | None = None,
        inline_waits_for_disk: bool = False,
    ) -> None:
        self.backend = backend
        self.policy = policy
        self.retention = retention
        self.linger_s = linger_s
        self.inline = inline
        self.inline_waits_for_disk = inline_waits_for_disk
        """An inline commit is fsynced (`power`): made only for a caller that is `alone`."""
        self._pending_since: float | None = None
        """When this process last left rows pending with nobody due to chain them (`time.monotonic`;
        guarded by `_lock`): the writer commits by `linger_s` after it."""
        self._inline_barred_until = 0.0
        """`time.monotonic()` before which no fsynced commit is made inline (they were slow)."""
        self._inline_time = 0.0
        """The moving average of the inline fsynced commits' times, in seconds."""
        self.commits = 0
        self.failed_writes = 0
        self._queue: queue.SimpleQueue[Job] = queue.SimpleQueue()
        self._lingering: list[Job] = []
        """Events nobody waits on, not yet handed to the writer (guarded by `_lock`)."""
        self._lingering_since = 0.0
        """When the oldest lingering event was queued (`time.monotonic`; guarded by `_lock`)."""
        self._writer_wakes = False
        """The writer thread will wake by itself in time for lingering events, so they need not
        nudge it (guarded by `_lock`)."""
        self._watch_until: float | None = None
        """Until when the writer keeps a deadline after a batch though nothing lingers (guarded by `_lock`)."""
        self._queued = 0
        """Jobs other than nudges put on the queue and not yet committed (guarded by `_lock`)."""
        self._lock = threading.Lock()
        self._accepting = False
        self._closed = False
        self._thread: threading.Thread | None = None
        self._conn: ConnT | None = None
        self._conn_lock = threading.Lock()
        """Held while `_conn` is in use: by the writer thread, or by an inline durable write."""
        self._unsynced = False
        self._next_prune = 0.0

    @property
    def description(self) -> str:
        return self.backend.description

    async def open(self) -> None:
        """Connect (creating or migrating the schema) and start the writer thread."""
        if self._thread is not None:
            raise AuditStoreError(f"audit store {self.backend.description} is already opened")
        opened: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        ready = Job(JobKind.FLUSH, waiter=opened)
        self._thread = threading.Thread(target=self._run, args=(ready,), name="bastion-audit-writer", daemon=True)
        self._thread.start()
        try:
            await opened
        except AuditStoreError:
            self._thread = None
            raise
        with self._lock:
            self._accepting = True

    async def close(self) -> None:
        """Commit everything queued, stop the writer and close the connection. Idempotent."""
        await settled()
        with self._lock:
            thread, already_closed = self._thread, self._closed
            self._closed = True
            self._accepting = False
            if already_closed or thread is None or not thread.is_alive():
                return
            stopped: asyncio.Future[int] = asyncio.get_running_loop().create_future()
            self._queued += 1
            self._queue.put(Job(JobKind.STOP, waiter=stopped))
        try:
            await stopped
        finally:
            await anyio.to_thread.run_sync(thread.join)

    async def record(self, event: AuditEvent, *, durable: bool = True, alone: bool = False) -> None:
        """Append `event`; with `durable`, return only once it is committed (`alone`: see the module docstring)."""
        row = encode_event(event, self.policy)
        inline = self.inline
        if durable and inline is not None:
            if not self.inline_waits_for_disk:
                if self._commit_inline(inline, row):
                    return
            elif alone and time.monotonic() >= self._inline_barred_until:
                began = time.perf_counter()
                if self._commit_inline(inline, row):
                    self._inline_took(time.perf_counter() - began)
                    return
        waiter = asyncio.get_running_loop().create_future() if durable else None
        await self._submit_and_wait(Job(JobKind.EVENT, row, waiter))

    def _inline_took(self, seconds: float) -> None:
        """Note an inline fsynced commit's time; bar them for a while when they are slow on average."""
        self._inline_time += INLINE_WEIGHT * (seconds - self._inline_time)
        if self._inline_time > INLINE_SLOW_S:  # a slow disk: do not hold the loop
            self._inline_barred_until = time.monotonic() + INLINE_BACKOFF_S
            self._inline_time = 0.0  # judged afresh once the back-off is over

    def _check_accepting(self) -> None:
        """Raise unless the store takes writes now. Called with `_lock` held."""
        if not self._accepting:
            state = "closed" if self._closed else "not opened"
            raise AuditStoreError(f"audit store {self.backend.description} is {state}")
        if self._thread is None or not self._thread.is_alive():
            raise AuditStoreError(f"audit writer for {self.backend.description} has stopped")

    @property
    def queue_depth(self) -> int:
        with self._lock:
            return self._queued + len(self._lingering)

    def _submit(self, job: Job) -> None:
        with self._lock:
            self._check_accepting()
            if job.kind is JobKind.EVENT and job.waiter is None:
                # Wake the writer only for the first one, and only if it has no deadline of its
                # own: it then commits them all within LINGER_S.
                if not self._lingering:
                    self._lingering_since = time.monotonic()
                    if not self._writer_wakes:
                        self._writer_wakes = True
                        self._queue.put(Job(JobKind.NUDGE))
                self._lingering.append(job)
            else:
                self._queued += 1
                self._queue.put(job)

    def _commit_inline(self, append: InlineAppend[ConnT], row: EventRow, *, synced: bool = True) -> bool:
        """Commit `row` on this thread if the writer and the database are free; False if they are
        not. Whatever lingers goes with it into the chain; when the row is left pending, the
        lingering events stay for the writer, which chains them after it: the fsync the caller
        waits for then writes this record alone (not, say, the previous call's large result).
        `synced`: `append` syncs the commit (False: the caller syncs it its own way)."""
        if not self._conn_lock.acquire(blocking=False):
            return False
        pends = self.backend.pends_inline
        try:
            with self._lock:
                self._check_accepting()
                if self._queued:  # the writer has work: keep the order, join the queue
                    return False
                lingering: list[Job] = []
                if not pends:
                    lingering, self._lingering = self._lingering, []
            rows = [job.row for job in lingering if job.row is not None] + [row]
            try:
                if not append(self._connection(), rows):
                    with self._lock:  # back in front of anything newer, for the writer to commit
                        self._lingering[:0] = lingering
                    return False
                if pends:
                    self._leave_pending()
            except Exception as exc:
                self._drop_connection()
                self.failed_writes += len(rows)
                message = f"audit write to {self.backend.description} failed, {len(rows)} events not committed: {exc}"
                logger.error("%s", message)
                raise AuditStoreError(message) from exc
            self.commits += 1
            self._unsynced = not synced
            with self._lock:
                if self._writer_wakes:  # it has a deadline: let it keep watching for what follows
                    self._watch_until = time.monotonic() + self.linger_s
            return True
        finally:
            self._conn_lock.release()

    def _leave_pending(self) -> None:
        """Rows were committed pending: have the writer chain them within `linger_s`."""
        with self._lock:
            if self._pending_since is None:
                self._pending_since = time.monotonic()
                if not self._writer_wakes:
                    self._writer_wakes = True
                    self._queue.put(Job(JobKind.NUDGE))

    def _waiting_since(self) -> float | None:
        """Since when the oldest lingering event or pending row waits for a commit. Called with `_lock` held."""
        since = [self._lingering_since] if self._lingering else []
        if self._pending_since is not None:
            since.append(self._pending_since)
        return min(since) if since else None

    async def _submit_and_wait(self, job: Job) -> int:
        self._submit(job)
        return 0 if job.waiter is None else await job.waiter

    # The writer thread. Everything below runs there (`_connection`, `_drop_connection` also
    # in an inline write), and touches `_conn` only with `_conn_lock` held.

    def _run(self, ready: Job) -> None:
        try:
            self._conn = self.backend.connect()
        except Exception as exc:  # any failure must reach `open()`, which is waiting
            ready.error = f"cannot open audit log {self.backend.description}: {exc}"
            self._settle([ready])
            return
        self._settle([ready])
        stopping = False
        while not stopping:
            with self._conn_lock:
                self._maybe_prune(forced=False)
            timeout = self._next_timeout()
            if timeout is None:  # about to sleep until someone writes: finish the housekeeping first
                self._housekeep(idle=True)
                timeout = self._next_timeout()
            try:
                batch = [self._queue.get(timeout=timeout)]
            except queue.Empty:
                batch = []
            while batch and len(batch) < MAX_BATCH and batch[-1].kind is not JobKind.STOP:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            if all(job.kind is JobKind.NUDGE for job in batch) and not self._lingering_due():
                # Nothing anyone waits on: lingering events are committed once their time is up.
                # Meanwhile a checkpoint may be due after inline commits, which never tidy.
                self._housekeep(idle=False)
                continue
            taken = sum(job.kind is not JobKind.NUDGE for job in batch)
            with self._lock:
                lingering, self._lingering = self._lingering, []
                pending = self._pending_since is not None
            batch = lingering + batch
            if not batch and not pending:
                continue
            stopping = bool(batch) and batch[-1].kind is JobKind.STOP
            with self._conn_lock:
                self._commit(batch)
                if any(job.kind is JobKind.PRUNE for job in batch):
                    self._maybe_prune(forced=True, jobs=[j for j in batch if j.kind is JobKind.PRUNE])
                if stopping:  # closing the last connection checkpoints the log all the same
                    self._tidy(idle=True)
                    self._drop_connection()
                    self.backend.release()
            with self._lock:
                self._queued -= taken
                # Watch for what follows (a call's verdict and completion) from now on, so
                # that it does not wake this thread: set before the waiters go on.
                self._watch_until = time.monotonic() + self.linger_s
                self._writer_wakes = True
            self._settle(batch)
            if not stopping:
                self._housekeep(idle=False)

    def _lingering_due(self) -> bool:
        """Whether the oldest lingering event (or pending row) has waited `linger_s`."""
        with self._lock:
            since = self._waiting_since()
            return since is not None and time.monotonic() >= since + self.linger_s

    def _next_timeout(self) -> float | None:
        """How long the writer may sleep: until lingering events are due, or retention is.

        After a batch it keeps a deadline for `linger_s` even when nothing lingers (more
        calls are likely), so the events that come meanwhile need not wake it. Once nothing
        lingers and that watch is over, it sleeps without one, and the next lingering event
        nudges it (`_submit`)."""
        deadlines = []
        now = time.monotonic()
        with self._lock:
            if (since := self._waiting_since()) is not None:
                deadlines.append(since + self.linger_s)
            elif self._watch_until is not None and now < self._watch_until:
                deadlines.append(self._watch_until)
            else:
                self._watch_until = None
            self._writer_wakes = bool(deadlines)
        if self.retention is not None and self.retention.enabled:
            deadlines.append(self._next_prune)
        if (housekeeping := self.backend.housekeeping_due()) is not None:
            deadlines.append(housekeeping)
        if not deadlines:
            return None
        return max(0.001, min(deadlines) - now)

    def _maybe_prune(self, *, forced: bool, jobs: list[Job] | None = None) -> None:
        if self.retention is None or not self.retention.enabled:
            return
        if not forced and time.monotonic() < self._next_prune:
            return
        self._next_prune = time.monotonic() + PRUNE_INTERVAL_S
        try:
            conn = self._connection()
            removed = self.backend.prune(conn, self.retention, time.time(), self.policy)
            if removed:
                logger.info("audit retention removed %d event(s) from %s", removed, self.backend.description)
        except Exception as exc:  # retention must never stop the writer
            self._drop_connection()
            logger.error("audit retention on %s failed: %s", self.backend.description, exc)
            for job in jobs or []:
                job.error = f"audit retention failed: {exc}"

    def _connection(self) -> ConnT:
        if self._conn is None:
            self._conn = self.backend.connect()
        return self._conn

    def _commit(self, batch: list[Job]) -> None:
        rows = [job.row for job in batch if job.row is not None]
        with self._lock:  # the backend chains pending rows first in any commit (sqlite_pending.py)
            pending, self._pending_since = self._pending_since, None
        # Synced when someone waits; and when it chains pending rows, so that the next inline
        # commit's fsync has only its own pages to write, not this commit's too.
        sync = pending is not None or any(job.waiter is not None for job in batch)
        # A flush after unsynced commits syncs them, through a write of the health row.
        health = any(job.kind is JobKind.HEALTH for job in batch) or (sync and self._unsynced)
        if not rows and not health and pending is None:
            return
        try:
            self.backend.append(self._connection(), rows, health, sync)
            self.commits += 1
            self._unsynced = not sync
        except Exception as exc:  # whatever it is, the writer must live on and answer the waiters
            self._drop_connection()
            message = f"audit write to {self.backend.description} failed, {len(rows)} events not committed: {exc}"
            logger.error("%s", message)
            self.failed_writes += len(rows)
            if pending is not None:  # still in their table: chained by the next commit, or a retry
                with self._lock:  # not at once: a failing disk would have it retry (and log) in a loop
                    retry = time.monotonic() + PENDING_RETRY_S - self.linger_s
                    self._pending_since = retry if self._pending_since is None else min(retry, self._pending_since)
            for job in batch:  # a flush fails too when the records pending before it were not chained
                if job.kind in (JobKind.EVENT, JobKind.HEALTH) or (pending is not None and job.kind is JobKind.FLUSH):
                    job.error = message

    def _housekeep(self, *, idle: bool) -> None:
        """`tidy` with the connection held; then, if one is due, a checkpoint without it: the
        checkpoint syncs the log and the database, and a call's inline commit need not wait."""
        with self._conn_lock:
            due = self._tidy(idle=idle)
        if not due:
            return
        try:
            self.backend.checkpoint()
        except Exception as exc:  # housekeeping must never stop the writer
            logger.warning("audit log %s checkpoint failed: %s", self.backend.description, exc)

    def _tidy(self, *, idle: bool) -> bool:
        """`backend.tidy`: whether a checkpoint is due."""
        if self._conn is None:
            return False
        try:
            return self.backend.tidy(self._conn, idle)
        except Exception as exc:  # housekeeping must never stop the writer
            self._drop_connection()
            logger.warning("audit log %s housekeeping failed: %s", self.backend.description, exc)
            return False

    def _drop_connection(self) -> None:
        if self._conn is not None:
            self.backend.discard(self._conn)
            self._conn = None

    def _settle(self, batch: list[Job]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[Job]] = {}
        for job in batch:
            if job.waiter is not None:
                by_loop.setdefault(job.waiter.get_loop(), []).append(job)
        for loop, jobs in by_loop.items():
            with contextlib.suppress(RuntimeError):  # that event loop is closed: nobody waits any more
                loop.call_soon_threadsafe(_resolve, jobs, self.failed_writes)


def _resolve(jobs: list[Job], failed_writes: int) -> None:
    for job in jobs:
        resolve(job, failed_writes)

"""What both audit writers share: the jobs they queue and the API callers use to queue them.

`writer.py` (a thread, for SQLite's blocking driver) and `async_writer.py` (a task, for
PostgreSQL's async driver) differ in how a job reaches the writer and how its waiter is
woken. The jobs, and the meaning of `record_nowait`, `flush`, `prune_now` and
`check_writable`, are the same and live here; each writer supplies `_submit` (queue a job,
raising `AuditStoreError` when the store takes no writes) and `_submit_and_wait`.
"""

from __future__ import annotations

import asyncio
import enum
from abc import ABC, abstractmethod
from dataclasses import dataclass

import anyio

from bastion.audit.chain import EventRow, encode_event
from bastion.audit.events import AuditEvent
from bastion.audit.redact import PayloadPolicy
from bastion.audit.store import AuditStoreError

MAX_BATCH = 10_000
"""Most writes committed in one transaction; the rest wait for the next one."""
CHECK_WRITABLE_TIMEOUT_S = 2.0
PRUNE_INTERVAL_S = 3600.0


class JobKind(enum.Enum):
    EVENT = "event"
    NUDGE = "nudge"
    """Events are lingering: commit them soon unless something sooner does (the SQLite writer only)."""
    HEALTH = "health"
    FLUSH = "flush"
    PRUNE = "prune"
    STOP = "stop"


@dataclass(slots=True)
class Job:
    kind: JobKind
    row: EventRow | None = None
    waiter: asyncio.Future[int] | None = None
    """Resolved with the writer's failed-write count once the job is done (or failed with its error)."""
    error: str | None = None


def fail(jobs: list[Job], message: str) -> None:
    """Mark every job of a batch that was not committed (a STOP has nothing to commit)."""
    for job in jobs:
        if job.error is None and job.kind is not JobKind.STOP:
            job.error = message


def resolve(job: Job, failed_writes: int) -> None:
    """Wake `job`'s waiter, on the waiter's own event loop."""
    if job.waiter is None or job.waiter.done():  # done: the caller was cancelled
        return
    if job.error is None:
        job.waiter.set_result(failed_writes)
    else:
        job.waiter.set_exception(AuditStoreError(job.error))


def waiter() -> asyncio.Future[int]:
    return asyncio.get_running_loop().create_future()


async def settled() -> None:
    """Let the event loop run what was scheduled before this call: the events recorded on its
    next turn (`proxy.recording.record_soon`) are then queued before a flush or a close."""
    await asyncio.sleep(0)


class WriterFront(ABC):
    """The callers' side of a group-commit writer."""

    policy: PayloadPolicy
    failed_writes: int

    @property
    @abstractmethod
    def description(self) -> str:
        """Where the log is, for messages."""

    @property
    @abstractmethod
    def queue_depth(self) -> int:
        """Events queued and not yet committed (for the `bastion_audit_queue_depth` gauge)."""

    @abstractmethod
    def _submit(self, job: Job) -> None:
        """Queue `job` (any thread); raise `AuditStoreError` if the store takes no writes now."""

    @abstractmethod
    async def _submit_and_wait(self, job: Job) -> int:
        """Queue `job` and wait for its waiter (if it has one); the failed-write count after it."""

    @abstractmethod
    async def record(self, event: AuditEvent, *, durable: bool = True, alone: bool = False) -> None:
        """Append `event`; with `durable`, return only once it is committed."""

    async def record_ahead(self, event: AuditEvent, *, alone: bool = False) -> asyncio.Future[None] | None:
        """A durable `record` (see `AuditStore.record_ahead`); here on disk when it returns."""
        await self.record(event, alone=alone)
        return None

    def record_nowait(self, event: AuditEvent) -> None:
        """Queue `event` for the next group commit and return at once (any thread, no event loop needed)."""
        self._submit(Job(JobKind.EVENT, encode_event(event, self.policy)))

    async def flush(self) -> None:
        """Wait until everything queued so far is committed; raise if any of it failed."""
        await settled()
        failed_before = self.failed_writes
        failed_after = await self._submit_and_wait(Job(JobKind.FLUSH, waiter=waiter()))
        if failed_after > failed_before:
            raise AuditStoreError(
                f"{failed_after - failed_before} audit writes to {self.description} were not committed"
            )

    async def prune_now(self) -> None:
        """Apply the retention settings now (they are otherwise applied hourly and at open)."""
        await self._submit_and_wait(Job(JobKind.PRUNE, waiter=waiter()))

    async def check_writable(self) -> bool:
        """Whether a real write round-trips through the writer within 2 seconds."""
        with anyio.move_on_after(CHECK_WRITABLE_TIMEOUT_S):
            try:
                await self._submit_and_wait(Job(JobKind.HEALTH, waiter=waiter()))
            except AuditStoreError:
                return False
            return True
        return False

"""A file's `fdatasync`, started now and awaited later, without a thread (io_uring, through `caio`).

The write-ahead record of a tool call must be on disk before the call is forwarded
(`durability: power`). Synced in the commit, the event loop waits for the disk while it
could be judging the call; synced on another Python thread, each hand-off waits for the GIL
the loop holds while it judges (see docs/performance.md). Here the sync is handed to the
kernel: the event loop commits the record without syncing, submits an `fdatasync` of the
database's write-ahead log to an io_uring, judges the call meanwhile, and awaits the sync's
completion (an eventfd the loop watches) before anything goes to the server.

Only io_uring is used: Linux AIO's fsync (a kernel work queue) and caio's thread pool (its
completions take the GIL) measured slower here than syncing in the commit. Where io_uring
cannot be set up (an old kernel, a seccomp profile or `kernel.io_uring_disabled` that forbids
it, another OS), `BackgroundSync.create` returns None and the store syncs in the commit as
before. No submission polling thread is asked for: it would spin on a core.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from typing import TYPE_CHECKING, Any

from bastion.audit.store import AuditStoreError

if TYPE_CHECKING:
    from collections.abc import Callable, Generator

logger = logging.getLogger(__name__)

RING_SIZE = 64
"""Syncs in flight at once before `start` refuses (the caller then syncs on its own thread)."""


class BackgroundSync:
    """Starts `fdatasync` of a path on an io_uring; one per event loop (see `for_loop`)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, context: Any, operation: Any) -> None:
        self.loop = loop
        self._context = context
        self._operation = operation
        self._in_flight = 0
        loop.add_reader(context.fileno, self.reap)

    @classmethod
    def create(cls, loop: asyncio.AbstractEventLoop) -> BackgroundSync | None:
        """A ring on `loop`, or None where io_uring cannot be used (logged, at debug)."""
        try:
            from caio import linux_uring
        except ImportError as exc:  # not Linux, or caio built without it
            logger.debug("audit: no io_uring (%s): write-ahead records are synced in the commit", exc)
            return None
        try:
            context = linux_uring.Context(max_requests=RING_SIZE, sqpoll=False)
        except (OSError, SystemError) as exc:  # EPERM under seccomp, ENOSYS, io_uring_disabled
            logger.debug("audit: io_uring unavailable (%s): write-ahead records are synced in the commit", exc)
            return None
        return cls(loop, context, linux_uring.Operation)

    def start(self, path: str) -> asyncio.Future[None] | None:
        """Submit an `fdatasync` of the file at `path`; the future resolves once it is done, or
        fails with `AuditStoreError`. None if it cannot be submitted now (the caller syncs otherwise)."""
        if self._in_flight >= RING_SIZE:
            return None
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        done = SyncDone(self)
        operation = self._operation.fdsync(fd)
        operation.set_callback(_finisher(operation, fd, path, done))
        try:
            submitted = self._context.submit(operation)
            self._context.flush()
        except (OSError, SystemError) as exc:
            os.close(fd)
            logger.warning("audit: io_uring submission failed (%s): this write-ahead record is synced now", exc)
            return None
        if submitted != 1:
            os.close(fd)
            return None
        self._in_flight += 1
        done.add_done_callback(self._one_less)
        return done

    def _one_less(self, _: asyncio.Future[None]) -> None:
        self._in_flight -= 1

    def reap(self) -> None:
        """Resolve the futures of the syncs the kernel has finished (what the loop's reader does
        when it next polls the ring's eventfd); a no-op when none has."""
        with contextlib.suppress(BlockingIOError):  # completions already counted: drained below
            self._context.poll()
        while self._context.process_events():
            pass


class SyncDone(asyncio.Future[None]):
    """A sync's future that, awaited before it is resolved, first reaps the ring's completions.

    A sync that finished while the call was judged (the event loop busy) is then seen at once:
    the await does not go through the loop (its eventfd polled, the reader run, the waiting
    task woken), and nothing the loop has queued meanwhile runs before the call is forwarded."""

    def __init__(self, ring: BackgroundSync) -> None:
        super().__init__(loop=ring.loop)
        self._ring = ring

    def __await__(self) -> Generator[Any, None, None]:
        if not self.done():
            self._ring.reap()
        return super().__await__()


def sync_now(path: str) -> None:
    """`fdatasync` the file at `path` on this thread (raises `OSError`)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fdatasync(fd)
    finally:
        os.close(fd)


def _finisher(operation: Any, fd: int, path: str, done: asyncio.Future[None]) -> Callable[[int], None]:
    def finish(_: int) -> None:
        os.close(fd)
        if done.done():  # its waiter was cancelled: the sync went on regardless
            return
        code = operation.error
        if code:
            done.set_exception(AuditStoreError(f"fdatasync of {path} failed: {os.strerror(code)}"))
        else:
            done.set_result(None)

    return finish


_rings: dict[asyncio.AbstractEventLoop, BackgroundSync | None] = {}


def for_loop(loop: asyncio.AbstractEventLoop) -> BackgroundSync | None:
    """The ring of `loop` (made on first use; None where io_uring is unavailable)."""
    try:
        return _rings[loop]
    except KeyError:
        pass
    for old in [old for old in _rings if old.is_closed()]:
        del _rings[old]  # its loop is gone (tests, `anyio.run` in the CLI): so is its reader
    ring = BackgroundSync.create(loop)
    _rings[loop] = ring
    return ring

"""`audit.durability` on SQLite: which commits are fsynced (`synchronous=FULL`) and which are not."""

from __future__ import annotations

import queue
import sqlite3
import threading
import time
from pathlib import Path

import anyio
import pytest

from bastion.audit.chain import EventRow, encode_event
from bastion.audit.events import CallCompleted, CallRequested
from bastion.audit.redact import PayloadPolicy
from bastion.audit.retention import Retention
from bastion.audit.sqlite_store import BUSY_TIMEOUT_MS, CHECKPOINT_EVERY, SqliteBackend
from bastion.audit.store import Durability
from bastion.audit.writer import INLINE_SLOW_S, GroupCommitWriter
from bastion.audit.writer_front import Job, JobKind
from bastion.config import load_config
from bastion.config_errors import ConfigError

pytestmark = pytest.mark.anyio

FULL, NORMAL = 2, 1
"""`PRAGMA synchronous` values."""


class WatchedBackend(SqliteBackend):
    """The real SQLite backend, telling each commit's synchronous level and rows as it makes them."""

    def __init__(self, path: Path, *, fsync: bool) -> None:
        super().__init__(path, fsync=fsync)
        self.commits: queue.SimpleQueue[tuple[int, list[str], bool]] = queue.SimpleQueue()
        self.threads: list[str] = []

    def _write_and_commit(self, conn: sqlite3.Connection, rows: list[EventRow], health: bool) -> None:
        super()._write_and_commit(conn, rows, health)
        level = conn.execute("PRAGMA synchronous").fetchone()[0]
        self.threads.append(threading.current_thread().name)
        self.commits.put((level, [row.type for row in rows], health))

    def _pend_and_commit(self, conn: sqlite3.Connection, rows: list[EventRow]) -> None:
        super()._pend_and_commit(conn, rows)
        level = conn.execute("PRAGMA synchronous").fetchone()[0]
        self.threads.append(threading.current_thread().name)
        self.commits.put((level, [f"pending {row.type}" for row in rows], False))


async def next_commit(backend: WatchedBackend) -> tuple[int, list[str], bool]:
    return await anyio.to_thread.run_sync(lambda: backend.commits.get(timeout=10))


def requested() -> CallRequested:
    return CallRequested(agent="a", server="s", correlation_id="c1", method="tools/call", tool="t", arguments={})


def completed() -> CallCompleted:
    return CallCompleted(
        agent="a", server="s", correlation_id="c1", method="tools/call", tool="t", outcome="allowed", latency_ms=1.0
    )


@pytest.mark.parametrize(("durability", "durable_level"), [("power", FULL), ("process", NORMAL)])
async def test_a_durable_write_is_fsynced_only_under_power(
    tmp_path: Path, durability: Durability, durable_level: int
) -> None:
    backend = WatchedBackend(tmp_path / "audit.db", fsync=durability == "power")
    writer = GroupCommitWriter(backend, PayloadPolicy())
    await writer.open()
    try:
        await writer.record(requested(), durable=True)
        assert await next_commit(backend) == (durable_level, ["call.requested"], False)

        writer.record_nowait(completed())
        assert await next_commit(backend) == (NORMAL, ["call.completed"], False)
    finally:
        await writer.close()


async def test_a_flush_fsyncs_what_was_committed_without_fsync(tmp_path: Path) -> None:
    backend = WatchedBackend(tmp_path / "audit.db", fsync=True)
    writer = GroupCommitWriter(backend, PayloadPolicy())
    await writer.open()
    try:
        writer.record_nowait(completed())
        assert await next_commit(backend) == (NORMAL, ["call.completed"], False)

        await writer.flush()
        assert await next_commit(backend) == (FULL, [], True)

        await writer.flush()  # nothing new since the last fsync: no commit at all
        await writer.record(requested(), durable=True)
        assert await next_commit(backend) == (FULL, ["call.requested"], False)
    finally:
        await writer.close()


@pytest.mark.parametrize("durability", ["power", "process"])
def test_the_setting_loads(tmp_path: Path, durability: str) -> None:
    path = tmp_path / "bastion.yaml"
    path.write_text(f"audit: {{durability: {durability}}}\n", encoding="utf-8")

    assert load_config(path).audit.durability == durability


def test_an_unknown_durability_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bastion.yaml"
    path.write_text("audit: {durability: fsync}\n", encoding="utf-8")

    with pytest.raises(ConfigError, match=r"audit\.durability") as raised:
        load_config(path)
    assert "'power' or 'process'" in str(raised.value)


async def test_events_nobody_waits_on_ride_along_with_the_next_durable_write(tmp_path: Path) -> None:
    backend = WatchedBackend(tmp_path / "audit.db", fsync=True)
    writer = GroupCommitWriter(backend, PayloadPolicy(), linger_s=3600)  # never on their own here
    await writer.open()
    try:
        writer.record_nowait(completed())
        writer.record_nowait(completed())
        await writer.record(requested(), durable=True)

        assert await next_commit(backend) == (FULL, ["call.completed", "call.completed", "call.requested"], False)
        assert backend.commits.empty()
    finally:
        await writer.close()


async def test_lingering_events_are_committed_at_close(tmp_path: Path) -> None:
    backend = WatchedBackend(tmp_path / "audit.db", fsync=True)
    writer = GroupCommitWriter(backend, PayloadPolicy(), linger_s=3600)
    await writer.open()
    writer.record_nowait(completed())
    await writer.close()

    assert await next_commit(backend) == (FULL, ["call.completed"], False)


def test_the_wal_is_checkpointed_after_a_batch_not_inside_a_commit(tmp_path: Path) -> None:
    backend = SqliteBackend(tmp_path / "audit.db")
    conn = backend.connect()
    try:
        assert conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
        row = encode_event(requested(), PayloadPolicy(mode="full"))
        row = row._replace(data=row.data + " " * 8000)  # two pages a row: the WAL fills quickly
        before = (tmp_path / "audit.db").stat().st_size
        for _ in range(CHECKPOINT_EVERY - 1):
            backend.append(conn, [row], health=False, sync=False)
            assert backend.tidy(conn, idle=False) is False
        assert (tmp_path / "audit.db").stat().st_size == before  # the commits wrote only the WAL

        backend.append(conn, [row], health=False, sync=False)
        assert backend.tidy(conn, idle=False) is True  # due: the writer then checkpoints, without `conn`
        assert (tmp_path / "audit.db").stat().st_size == before
        backend.checkpoint()

        assert (tmp_path / "audit.db").stat().st_size > before  # the checkpoint copied them into the file
        assert backend.tidy(conn, idle=False) is False  # counted afresh
    finally:
        backend.release()
        conn.close()


async def test_under_process_a_lone_durable_write_commits_on_the_callers_thread(tmp_path: Path) -> None:
    backend = WatchedBackend(tmp_path / "audit.db", fsync=False)
    writer = GroupCommitWriter(backend, PayloadPolicy(), linger_s=3600, inline=backend.append_if_free)
    await writer.open()
    try:
        writer.record_nowait(completed())
        await writer.record(requested(), durable=True)

        assert backend.threads == [threading.current_thread().name]  # no hand-off to the writer thread
        assert await next_commit(backend) == (NORMAL, ["call.completed", "call.requested"], False)
    finally:
        await writer.close()


async def test_under_power_only_a_lone_durable_write_commits_on_the_callers_thread_fsynced(tmp_path: Path) -> None:
    """A caller with no other request in flight (`alone`) commits inline, fsync included; any
    other durable write goes to the writer thread, to be group-committed with its neighbours."""
    backend = WatchedBackend(tmp_path / "audit.db", fsync=True)
    writer = GroupCommitWriter(
        backend, PayloadPolicy(), linger_s=3600, inline=backend.append_if_free, inline_waits_for_disk=True
    )
    await writer.open()
    try:
        await writer.record(requested(), durable=True)  # not alone: handed to the writer thread
        assert await next_commit(backend) == (FULL, ["call.requested"], False)
        assert backend.threads == ["bastion-audit-writer"]

        writer.record_nowait(completed())
        await writer.record(requested(), durable=True, alone=True)
        # Synced, alone, into the table of records waiting to be chained (sqlite_pending.py); what
        # lingered stays for the writer thread, which chains it after.
        assert await next_commit(backend) == (FULL, ["pending call.requested"], False)
        assert backend.threads[1:] == [threading.current_thread().name]  # no hand-off, and synced

        await writer.record(requested(), durable=False, alone=True)  # nobody waits: lingers as before
        assert backend.threads[2:] == []
    finally:
        await writer.close()


class IdleWatchedQueue(queue.SimpleQueue[Job]):
    """The writer's queue, telling when the writer thread waits on it (so holds no lock)."""

    def __init__(self) -> None:
        super().__init__()
        self.waiting = threading.Event()

    def get(self, block: bool = True, timeout: float | None = None) -> Job:
        self.waiting.set()
        try:
            return super().get(block, timeout)
        finally:
            self.waiting.clear()


async def writer_idle(writer: GroupCommitWriter[sqlite3.Connection]) -> None:
    """Until the writer thread waits for work: an inline commit then finds the connection free
    (after a batch the writer tidies, and an inline commit never waits for it, by design)."""
    watched = writer._queue
    assert isinstance(watched, IdleWatchedQueue)
    assert await anyio.to_thread.run_sync(watched.waiting.wait, 10)


def watched_writer(backend: SqliteBackend) -> GroupCommitWriter[sqlite3.Connection]:
    writer = GroupCommitWriter(backend, PayloadPolicy(), inline=backend.append_if_free, inline_waits_for_disk=True)
    writer._queue = IdleWatchedQueue()
    return writer


class SlowDiskBackend(WatchedBackend):
    """Commits made on the caller's thread take `delay` more: a slow disk (which cannot be made here)."""

    def __init__(self, path: Path, *, delay: float) -> None:
        # Not fsynced: the back-off under test is the writer's, which times whatever an inline
        # commit takes, and `delay` stands for the slow disk. A real fsync's tail on a busy
        # virtual machine (several ms, now and then) made these tests' timing flaky.
        super().__init__(path, fsync=False)
        self.delay = delay

    def append_if_free(self, conn: sqlite3.Connection, rows: list[EventRow]) -> bool:
        time.sleep(self.delay)
        return super().append_if_free(conn, rows)


async def test_a_slow_disk_sends_the_next_lone_writes_to_the_writer_thread(tmp_path: Path) -> None:
    """The event loop is not held by a slow disk: once inline commits are slower than
    INLINE_SLOW_S on average, lone writes go to the writer thread for INLINE_BACKOFF_S."""
    backend = SlowDiskBackend(tmp_path / "audit.db", delay=INLINE_SLOW_S * 2)
    writer = watched_writer(backend)
    await writer.open()
    here = threading.current_thread().name
    try:
        for _ in range(5):
            await writer_idle(writer)
            await writer.record(requested(), durable=True, alone=True)
        # Twice INLINE_SLOW_S each: the average is over it after the third at the latest.
        inline = backend.threads.index("bastion-audit-writer")
        assert 1 <= inline <= 3
        assert backend.threads == [here] * inline + ["bastion-audit-writer"] * (5 - inline)

        backend.delay = 0.0
        writer._inline_barred_until = time.monotonic()  # the back-off is over
        await writer_idle(writer)
        await writer.record(requested(), durable=True, alone=True)
        assert backend.threads[5:] == [here]
    finally:
        await writer.close()


async def test_one_slow_inline_commit_among_quick_ones_does_not_bar_them(tmp_path: Path) -> None:
    """A virtual machine's fsync has a long tail: one commit a little over INLINE_SLOW_S is
    not a slow disk, and the next lone write is still made inline."""
    backend = SlowDiskBackend(tmp_path / "audit.db", delay=0.0)
    writer = watched_writer(backend)
    await writer.open()
    here = threading.current_thread().name
    try:
        for delay in (0.0, INLINE_SLOW_S * 1.2, 0.0):
            backend.delay = delay
            await writer_idle(writer)
            await writer.record(requested(), durable=True, alone=True)
        assert backend.threads == [here] * 3
    finally:
        await writer.close()


async def test_a_durable_write_joins_the_queue_when_the_writer_is_busy(tmp_path: Path) -> None:
    backend = WatchedBackend(tmp_path / "audit.db", fsync=False)
    writer = GroupCommitWriter(backend, PayloadPolicy(), inline=backend.append_if_free)
    await writer.open()
    try:
        with writer._conn_lock:  # the writer thread is using the connection
            async with anyio.create_task_group() as tg:
                tg.start_soon(writer.record, requested())
                await anyio.wait_all_tasks_blocked()
                assert backend.threads == []  # waiting for the writer, not committing inline
                writer._conn_lock.release()
                try:
                    assert await next_commit(backend) == (NORMAL, ["call.requested"], False)
                finally:
                    writer._conn_lock.acquire()
        assert backend.threads == ["bastion-audit-writer"]
    finally:
        await writer.close()


async def test_a_durable_write_never_waits_on_the_callers_thread_for_another_process(tmp_path: Path) -> None:
    backend = WatchedBackend(tmp_path / "audit.db", fsync=False)
    writer = GroupCommitWriter(backend, PayloadPolicy(), inline=backend.append_if_free)
    await writer.open()
    other = sqlite3.connect(tmp_path / "audit.db", isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another process (the CLI, say) is writing
        async with anyio.create_task_group() as tg:
            tg.start_soon(writer.record, requested())
            await anyio.wait_all_tasks_blocked()  # reached at once: the event loop was not held
            assert backend.threads == []
            other.execute("COMMIT")
        assert backend.threads == ["bastion-audit-writer"]
    finally:
        other.close()
        await writer.close()


def test_each_commit_path_sets_the_busy_timeout_it_needs(tmp_path: Path) -> None:
    """An inline commit must not wait for another process's lock; the writer thread's must."""
    backend = SqliteBackend(tmp_path / "audit.db", fsync=False)
    conn = backend.connect()
    row = encode_event(requested(), PayloadPolicy())
    statements: list[str] = []
    try:
        assert backend.append_if_free(conn, [row])
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 0

        conn.set_trace_callback(statements.append)
        backend.append(conn, [row], health=False, sync=True)
        conn.set_trace_callback(None)
        begin = statements.index("BEGIN IMMEDIATE")
        assert f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}" in statements[:begin]
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 0  # left as the inline commit wants it

        backend.prune(conn, Retention(max_events=10), time.time(), PayloadPolicy())
        assert backend.append_if_free(conn, [row])
        backend.prune(conn, Retention(max_events=10), time.time(), PayloadPolicy())
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == BUSY_TIMEOUT_MS
    finally:
        conn.close()


def test_a_commit_repeats_no_setting_already_in_force(tmp_path: Path) -> None:
    backend = SqliteBackend(tmp_path / "audit.db", fsync=True)
    conn = backend.connect()
    row = encode_event(requested(), PayloadPolicy())
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    try:
        backend.append(conn, [row], health=False, sync=True)
        backend.append(conn, [row], health=False, sync=True)
        assert not [s for s in statements if s.startswith("PRAGMA")]  # FULL and 5 s since connect

        backend.append(conn, [row], health=False, sync=False)
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == NORMAL
        backend.append(conn, [row], health=False, sync=True)
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == FULL
    finally:
        conn.close()


@pytest.mark.parametrize(("synced", "level"), [(False, NORMAL), (True, FULL)])
def test_the_writer_sets_the_connection_back_for_the_next_inline_commit(
    tmp_path: Path, synced: bool, level: int
) -> None:
    """A call's inline write-ahead commit runs on the event loop before its sync can start: after
    the writer thread's synced commit it must change no setting; the writer sets them back."""
    backend = SqliteBackend(tmp_path / "audit.db", fsync=True)
    conn = backend.connect()
    row = encode_event(requested(), PayloadPolicy())
    statements: list[str] = []
    try:
        assert backend.append_if_free(conn, [row], synced=synced)  # `synced=False`: the io_uring path
        backend.append(conn, [row], health=False, sync=True)  # the writer chains it: FULL, 5 s timeout
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == level
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 0

        conn.set_trace_callback(statements.append)
        assert backend.append_if_free(conn, [row], synced=synced)
        assert not [s for s in statements if s.startswith("PRAGMA")]

        statements.clear()
        backend.append(conn, [row], health=False, sync=True)  # and its own settings again for its commit
        begin = statements.index("BEGIN IMMEDIATE")
        assert f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}" in statements[:begin]
        assert synced or "PRAGMA synchronous = FULL" in statements[:begin]
    finally:
        conn.close()


class NudgeCountingQueue(queue.SimpleQueue[Job]):
    """The writer's queue, counting the nudges put on it (each one wakes the writer thread)."""

    nudges = 0

    def put(self, item: Job, block: bool = True, timeout: float | None = None) -> None:
        if item.kind is JobKind.NUDGE:
            self.nudges += 1
        super().put(item, block, timeout)


@pytest.mark.parametrize("durability", ["power", "process"])
async def test_events_after_a_commit_do_not_wake_the_writer_thread(tmp_path: Path, durability: Durability) -> None:
    """A call's verdict and completion follow its write-ahead record: the writer expects them."""
    backend = WatchedBackend(tmp_path / "audit.db", fsync=durability == "power")
    inline = backend.append_if_free if durability == "process" else None
    writer = GroupCommitWriter(backend, PayloadPolicy(), linger_s=3600, inline=inline)
    counting = NudgeCountingQueue()
    writer._queue = counting
    await writer.open()
    try:
        writer.record_nowait(completed())  # the writer is idle: this one wakes it
        assert counting.nudges == 1
        await writer.record(requested(), durable=True)
        assert await next_commit(backend) == (FULL if durability == "power" else NORMAL,
                                              ["call.completed", "call.requested"], False)  # fmt: skip
        for _ in range(3):
            writer.record_nowait(completed())
        assert counting.nudges == 1

        await writer.flush()
        assert (await next_commit(backend))[1] == ["call.completed"] * 3
    finally:
        await writer.close()


class CheckpointWatchedBackend(WatchedBackend):
    def __init__(self, path: Path, *, fsync: bool) -> None:
        super().__init__(path, fsync=fsync)
        self.checkpointed = threading.Event()

    def checkpoint(self) -> None:
        super().checkpoint()
        self.checkpointed.set()


@pytest.mark.parametrize("fsync", [False, True], ids=["process", "power"])
async def test_the_writer_checkpoints_after_inline_commits_even_with_nothing_to_commit(
    tmp_path: Path, fsync: bool
) -> None:
    """The calls' commits made inline (under `process`; a lone call's write-ahead record under
    `power`, into `audit_pending`) count towards the next checkpoint, and the writer thread may
    have none of its own for a long while: the WAL must still be checkpointed (by the writer,
    off the calls' path) whenever it wakes. Left to grow, the log is extended by each call's
    commit, and its fsync then waits on the file system's journal too."""
    backend = CheckpointWatchedBackend(tmp_path / "audit.db", fsync=fsync)
    writer = GroupCommitWriter(
        backend, PayloadPolicy(), linger_s=3600, inline=backend.append_if_free, inline_waits_for_disk=fsync
    )
    await writer.open()
    try:
        for _ in range(CHECKPOINT_EVERY):
            await writer.record(requested(), durable=True, alone=True)  # inline, unless the writer was busy

        writer._queue.put(Job(JobKind.NUDGE))  # it wakes (a deadline, a nudge) with nothing to commit

        assert await anyio.to_thread.run_sync(backend.checkpointed.wait, 10)
    finally:
        await writer.close()


class SlowCheckpointBackend(WatchedBackend):
    """A checkpoint that stops half-way until the test lets it go, as one stuck on a slow disk's syncs."""

    def __init__(self, path: Path, *, fsync: bool) -> None:
        super().__init__(path, fsync=fsync)
        self.checkpointing = threading.Event()
        self.go_on = threading.Event()

    def checkpoint(self) -> None:
        self.checkpointing.set()
        self.go_on.wait(30)
        super().checkpoint()


async def test_a_call_commits_inline_while_the_writer_checkpoints(tmp_path: Path) -> None:
    """The checkpoint (which syncs the log and the database) runs on a connection of its own,
    without the writing connection: a call's commit meanwhile is made at once on the caller's
    thread, not queued behind the checkpoint for the writer thread."""
    backend = SlowCheckpointBackend(tmp_path / "audit.db", fsync=False)
    writer = GroupCommitWriter(backend, PayloadPolicy(), linger_s=3600, inline=backend.append_if_free)
    await writer.open()
    try:
        for _ in range(CHECKPOINT_EVERY):
            await writer.record(requested(), durable=True, alone=True)
        writer._queue.put(Job(JobKind.NUDGE))  # the writer wakes with nothing to commit: the checkpoint is due
        assert await anyio.to_thread.run_sync(backend.checkpointing.wait, 10)
        backend.threads.clear()

        with anyio.fail_after(10):  # queued, it would wait for the checkpoint
            await writer.record(requested(), durable=True, alone=True)

        assert backend.threads == [threading.current_thread().name]
        assert not backend.go_on.is_set()  # the checkpoint was still under way
    finally:
        backend.go_on.set()
        await writer.close()

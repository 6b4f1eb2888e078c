"""The write-ahead record's sync handed to io_uring (`disk_sync.py`, `SqliteAuditStore.record_ahead`).

Real io_uring, real files, a real SQLite store. Where this kernel refuses io_uring (a seccomp
profile, `kernel.io_uring_disabled`), the ring's own tests skip, saying so, and the store's
fall-back is tested all the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bastion.audit import disk_sync
from bastion.audit.chain import EventRow
from bastion.audit.events import CallRequested
from bastion.audit.sqlite_store import SqliteAuditStore
from bastion.audit.store import AuditStoreError, Durability

pytestmark = pytest.mark.anyio

FULL, NORMAL = 2, 1
"""`PRAGMA synchronous` values."""


def ring() -> disk_sync.BackgroundSync:
    found = disk_sync.for_loop(asyncio.get_running_loop())
    if found is None:
        pytest.skip("SKIPPED LOUDLY: this kernel refuses io_uring; the write-ahead sync falls back to the commit")
    return found


@contextlib.asynccontextmanager
async def opened_store(tmp_path: Path, durability: Durability = "power") -> AsyncIterator[SqliteAuditStore]:
    """A real SQLite audit store in `tmp_path`, open for the block and closed after it."""
    store = SqliteAuditStore(tmp_path / "audit.db", durability=durability)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def requested(n: int = 1) -> CallRequested:
    return CallRequested(agent="a", server="s", correlation_id=f"c{n}", method="tools/call", tool="t", arguments={})


async def test_a_sync_resolves_once_done_and_closes_the_file_it_opened(tmp_path: Path) -> None:
    path = tmp_path / "log"
    path.write_bytes(b"x" * 4096)
    syncs = ring()
    before = open_descriptors()
    on_disk = syncs.start(str(path))
    assert on_disk is not None
    await asyncio.wait_for(on_disk, 10)
    assert on_disk.result() is None
    assert open_descriptors() == before


async def test_a_sync_done_while_the_loop_was_busy_resolves_without_a_turn_of_the_loop(tmp_path: Path) -> None:
    """As when the sync finishes while the call is judged: awaiting it reaps the ring at once, so
    what the loop has queued meanwhile (a verdict's audit record) does not run before the forward."""
    path = tmp_path / "log"
    path.write_bytes(b"x" * 4096)
    syncs = ring()
    on_disk = syncs.start(str(path))
    assert on_disk is not None
    # Busy (no await) until the kernel has posted the completion: its eventfd turns readable.
    readable, _, _ = select.select([syncs._context.fileno], [], [], 10)
    assert readable, "the kernel did not finish a one-page fdatasync within 10 s"
    turns: list[str] = []
    asyncio.get_running_loop().call_soon(turns.append, "the loop turned")
    await on_disk
    assert turns == [], "the await went through the event loop"
    assert on_disk.result() is None


async def test_a_sync_awaited_at_once_resolves_when_the_kernel_is_done(tmp_path: Path) -> None:
    path = tmp_path / "log"
    path.write_bytes(b"x" * 4096)
    on_disk = ring().start(str(path))
    assert on_disk is not None
    await on_disk  # reaps first (nothing yet, as a rule), then waits on the loop's reader as before
    assert on_disk.done()
    assert on_disk.result() is None


async def test_a_sync_the_kernel_refuses_fails_with_an_audit_store_error() -> None:
    syncs = ring()
    on_disk = syncs.start("/dev/null")  # a character device: fdatasync is EINVAL
    assert on_disk is not None
    with pytest.raises(AuditStoreError, match="fdatasync of /dev/null failed"):
        await asyncio.wait_for(on_disk, 10)


async def test_a_file_that_cannot_be_opened_raises_at_once(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        ring().start(str(tmp_path / "absent"))


async def test_one_ring_per_event_loop() -> None:
    assert ring() is disk_sync.for_loop(asyncio.get_running_loop())


def pending_ids(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        return [row[0] for row in conn.execute("SELECT correlation_id FROM audit_pending ORDER BY id")]


async def test_a_lone_write_ahead_record_is_committed_unsynced_then_synced_by_the_ring(tmp_path: Path) -> None:
    ring()
    async with opened_store(tmp_path) as store:
        on_disk = await store.record_ahead(requested(), alone=True)
        assert on_disk is not None, "under power, alone, with io_uring: the sync is left to the caller to await"
        assert pending_ids(tmp_path / "audit.db") == ["c1"], "committed (visible) when record_ahead returns"
        await asyncio.wait_for(on_disk, 10)
        assert store.commits == 1
    assert pending_ids(tmp_path / "audit.db") == [], "chained by the writer at close"


@pytest.mark.parametrize(("durability", "alone"), [("power", False), ("process", True), ("process", False)])
async def test_otherwise_the_record_is_durable_when_record_ahead_returns(
    tmp_path: Path, durability: Durability, alone: bool
) -> None:
    async with opened_store(tmp_path, durability) as store:
        assert await store.record_ahead(requested(), alone=alone) is None
        await store.flush()
    with sqlite3.connect(tmp_path / "audit.db") as conn:
        assert conn.execute("SELECT count(*) FROM events WHERE type = 'call.requested'").fetchone()[0] == 1


def pending_commit_levels(store: SqliteAuditStore, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The `PRAGMA synchronous` level of each commit into `audit_pending`, as the store makes them."""
    levels: list[int] = []
    backend = store._sqlite
    original = backend._pend_and_commit

    def watched(conn: sqlite3.Connection, rows: list[EventRow]) -> None:
        original(conn, rows)
        levels.append(conn.execute("PRAGMA synchronous").fetchone()[0])

    monkeypatch.setattr(backend, "_pend_and_commit", watched)
    return levels


async def test_without_io_uring_a_lone_record_is_fsynced_in_its_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kernel without io_uring cannot be had here: the ring's absence is injected."""
    monkeypatch.setattr(disk_sync, "for_loop", lambda loop: None)
    async with opened_store(tmp_path) as store:
        levels = pending_commit_levels(store, monkeypatch)
        assert await store.record_ahead(requested(), alone=True) is None
    assert levels == [FULL]


async def test_with_io_uring_the_lone_commit_itself_is_not_fsynced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ring()
    async with opened_store(tmp_path) as store:
        levels = pending_commit_levels(store, monkeypatch)
        on_disk = await store.record_ahead(requested(), alone=True)
        assert on_disk is not None
        await asyncio.wait_for(on_disk, 10)
        # The next durable write that is not alone goes through the writer thread, fsynced as before.
        assert await store.record_ahead(requested(2), alone=False) is None
    assert levels == [NORMAL]


async def test_a_full_ring_syncs_the_record_before_record_ahead_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    syncs = ring()
    monkeypatch.setattr(syncs, "_in_flight", disk_sync.RING_SIZE)
    async with opened_store(tmp_path) as store:
        assert await store.record_ahead(requested(), alone=True) is None

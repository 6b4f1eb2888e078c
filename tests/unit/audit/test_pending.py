"""Write-ahead records waiting to be chained (`audit_pending`, `sqlite_pending.py`): synced before
the caller goes on, chained in order by the next commit, never lost, never chained twice, and
not laundered into the signed chain when changed meanwhile."""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import queue
import signal
import sqlite3
import sys
import textwrap
import time
from pathlib import Path

import anyio
import pytest

from bastion.audit import sqlite_store
from bastion.audit.anchor import AuditAnchor, AuditKey, anchor_at
from bastion.audit.chain import EventRow, encode_event
from bastion.audit.events import CallCompleted, CallRequested
from bastion.audit.query import EventQuery
from bastion.audit.redact import PayloadPolicy
from bastion.audit.search import search, verify_log
from bastion.audit.sqlite_store import SqliteAuditStore, SqliteBackend
from bastion.audit.writer import PENDING_RETRY_S, GroupCommitWriter

pytestmark = pytest.mark.anyio

FULL = 2


def requested(call: str) -> CallRequested:
    return CallRequested(agent="a", server="s", correlation_id=call, method="tools/call", tool="t", arguments={})


def completed(call: str) -> CallCompleted:
    return CallCompleted(
        agent="a", server="s", correlation_id=call, method="tools/call", tool="t", outcome="allowed", latency_ms=1.0
    )


def row(event: CallRequested | CallCompleted) -> EventRow:
    return encode_event(event, PayloadPolicy())


def table(path: Path, name: str) -> list[tuple[str, str]]:
    """(type, correlation_id) of every row of `name`, in the order it was written."""
    order = "seq" if name == "events" else "id"
    with sqlite3.connect(path) as conn:
        return conn.execute(f"SELECT type, correlation_id FROM {name} ORDER BY {order}").fetchall()


class ChainingBackend(SqliteBackend):
    """The real backend, telling each commit into the chain (its synchronous level and rows)."""

    def __init__(self, path: Path, anchor: AuditAnchor | None = None) -> None:
        super().__init__(path, fsync=True, anchor=anchor)
        self.chained: queue.SimpleQueue[tuple[int, list[str]]] = queue.SimpleQueue()
        self.fail_next = False

    def _write_and_commit(self, conn: sqlite3.Connection, rows: list[EventRow], health: bool) -> None:
        if self.fail_next:
            self.fail_next = False
            raise sqlite3.OperationalError("disk I/O error (injected)")
        super()._write_and_commit(conn, rows, health)
        level = conn.execute("PRAGMA synchronous").fetchone()[0]
        self.chained.put((level, [f"{t} {c}" for t, c in conn.execute("SELECT type, correlation_id FROM events")]))


def writer_on(backend: SqliteBackend, linger_s: float) -> GroupCommitWriter[sqlite3.Connection]:
    return GroupCommitWriter(
        backend,
        PayloadPolicy(),
        linger_s=linger_s,
        inline=backend.append_if_free,
        inline_waits_for_disk=True,
    )


async def next_chained(backend: ChainingBackend) -> tuple[int, list[str]]:
    return await anyio.to_thread.run_sync(lambda: backend.chained.get(timeout=10))


async def test_a_lone_durable_record_is_synced_pending_alone_then_chained_first(tmp_path: Path) -> None:
    """Under `power` a lone durable record is committed, alone, to the pending table, not the
    chain: what lingers (the previous call's completion, which may hold a large result) is not
    in the fsync its caller waits for. The writer chains the pending record, then what lingers,
    within `linger_s`, fsynced; each call's events keep their order."""
    path = tmp_path / "audit.db"
    backend = ChainingBackend(path)
    writer = writer_on(backend, linger_s=0.05)
    await writer.open()
    try:
        writer.record_nowait(completed("c0"))
        await writer.record(requested("c1"), durable=True, alone=True)
        # Back at the caller: the record is in the pending table (on disk: the commit was fsynced).
        assert table(path, "audit_pending") == [("call.requested", "c1")]
        assert table(path, "events") == []

        writer.record_nowait(completed("c1"))
        level, chained = await next_chained(backend)  # nobody flushed: the writer does so by itself
        assert chained == ["call.requested c1", "call.completed c0", "call.completed c1"]
        assert level == FULL  # so the next inline commit's fsync writes only its own pages
        assert table(path, "audit_pending") == []
    finally:
        await writer.close()
    report = verify_log(SqliteAuditStore(path))
    assert report.ok
    assert report.checked == 3


async def test_a_flush_chains_pending_records(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    store = SqliteAuditStore(path, durability="power")
    await store.open()
    try:
        await store.record(requested("c1"), alone=True)
        assert table(path, "audit_pending") == [("call.requested", "c1")]
        await store.flush()
        assert table(path, "events") == [("call.requested", "c1")]
        assert table(path, "audit_pending") == []
        assert [e.correlation_id for e in search(store, EventQuery()).events] == ["c1"]
    finally:
        await store.close()


async def test_a_failed_chaining_commit_leaves_the_records_pending_for_the_next(tmp_path: Path) -> None:
    """Nothing durable is lost when the commit that chains pending records fails."""
    path = tmp_path / "audit.db"
    backend = ChainingBackend(path)
    writer = writer_on(backend, linger_s=3600)  # only the flushes commit
    await writer.open()
    try:
        backend.fail_next = True
        await writer.record(requested("c1"), durable=True, alone=True)
        with pytest.raises(Exception, match="injected"):
            await writer.flush()
        assert table(path, "audit_pending") == [("call.requested", "c1")]
        # Retried later, not at once: a failing disk must not have the writer retry (and log) in a loop.
        due = writer._pending_since
        assert due is not None
        assert due + writer.linger_s >= time.monotonic() + PENDING_RETRY_S / 2
        await writer.flush()
        assert table(path, "events") == [("call.requested", "c1")]
        assert table(path, "audit_pending") == []
    finally:
        await writer.close()


CRASHING_WRITER = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from bastion.audit.anchor import anchor_at
    from bastion.audit.chain import encode_event
    from bastion.audit.events import CallRequested
    from bastion.audit.redact import PayloadPolicy
    from bastion.audit.sqlite_store import SqliteBackend

    folder = Path(sys.argv[1])
    backend = SqliteBackend(folder / "audit.db", fsync=True, anchor=anchor_at(folder))
    conn = backend.connect()
    rows = [encode_event(CallRequested(agent="a", server="s", correlation_id=f"c{n}", method="tools/call",
                                       tool="t", arguments={"n": n}), PayloadPolicy()) for n in range(3)]
    assert backend.append_if_free(conn, rows)
    os.kill(os.getpid(), signal.SIGKILL)  # the calls would be forwarded now: the process dies instead
    """
)


async def test_records_pending_when_a_process_is_killed_are_chained_by_the_next_open(tmp_path: Path) -> None:
    done = await anyio.run_process([sys.executable, "-c", CRASHING_WRITER, str(tmp_path)], check=False)
    assert done.returncode == -signal.SIGKILL
    path = tmp_path / "audit.db"
    assert [c for _, c in table(path, "audit_pending")] == ["c0", "c1", "c2"]

    store = SqliteAuditStore(path, durability="power", anchor=anchor_at(tmp_path))
    await store.open()  # recovery: whoever opens the log next chains them
    await store.close()
    assert table(path, "events") == [("call.requested", f"c{n}") for n in range(3)]
    assert table(path, "audit_pending") == []
    report = verify_log(SqliteAuditStore(path), anchor_at(tmp_path))
    assert report.ok
    assert report.checked == 3


async def test_records_another_connection_left_pending_are_chained_once(tmp_path: Path) -> None:
    """Two processes share the file: either one's next commit chains the other's pending records,
    in the same transaction that removes them, so neither chains them twice."""
    path = tmp_path / "audit.db"
    other = SqliteBackend(path, fsync=True)
    other_conn = other.connect()
    try:
        assert other.append_if_free(other_conn, [row(requested("theirs"))])
        store = SqliteAuditStore(path, durability="power")
        await store.open()
        try:
            await store.record(requested("ours"))  # not alone: the writer thread chains it
        finally:
            await store.close()
        other.append(other_conn, [row(completed("theirs"))], health=False, sync=True)
    finally:
        other_conn.close()
    assert table(path, "events") == [
        ("call.requested", "theirs"),
        ("call.requested", "ours"),
        ("call.completed", "theirs"),
    ]
    assert verify_log(SqliteAuditStore(path)).ok


def test_a_sealed_record_survives_the_round_trip(tmp_path: Path) -> None:
    """What is sealed on the way in is what is read back (floats and non-ASCII text included)."""
    path = tmp_path / "audit.db"
    backend = SqliteBackend(path, fsync=True, anchor=anchor_at(tmp_path))
    conn = backend.connect()
    try:
        event = CallRequested(
            time=1765000000.123456789,
            agent="ä",
            server="s",
            correlation_id="c1",
            method="tools/call",
            tool="t",
            arguments={"x": 0.1 + 0.2, "y": "✓ \u2028"},
        )
        assert backend.append_if_free(conn, [row(event)])
        backend.append(conn, [], health=False, sync=True)
    finally:
        conn.close()
    assert table(path, "events") == [("call.requested", "c1")]


def test_a_rejected_pending_record_is_reported_only_once_its_commit_holds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A commit that fails after taking the pending records rolls back: they stay pending, and
    nothing is logged of one that would have been rejected until a commit chains it."""
    path = tmp_path / "audit.db"
    backend = SqliteBackend(path, fsync=True, anchor=anchor_at(tmp_path))
    conn = backend.connect()
    try:
        assert backend.append_if_free(conn, [row(requested("c1"))])
        conn.execute("UPDATE audit_pending SET tool = 'other'")
        with monkeypatch.context() as patched:
            patched.setattr(sqlite_store, "append_chained", _failing_append)
            with (
                caplog.at_level(logging.ERROR, logger="bastion.audit.sqlite_pending"),
                pytest.raises(OSError, match="injected"),
            ):
                backend.append(conn, [], health=False, sync=True)
            conn.execute("ROLLBACK")  # as the writer's `discard` does
        assert caplog.text == ""
        assert table(path, "audit_pending") == [("call.requested", "c1")]

        with caplog.at_level(logging.ERROR, logger="bastion.audit.sqlite_pending"):
            backend.append(conn, [], health=False, sync=True)
    finally:
        conn.close()
    assert "correlation id c1" in caplog.text
    assert table(path, "events") == [("audit.pending_rejected", "c1")]


def _failing_append(*_: object) -> None:
    raise OSError("disk I/O error (injected)")


@pytest.mark.parametrize("size", [0, 1, 600, 70_000])
def test_a_seal_is_the_hmac_sha256_of_its_context_and_record(size: int) -> None:
    """The seal's format does not change with how it is computed: a record sealed by an earlier
    version (left pending by a crash) still matches its seal after an upgrade."""
    secret, data = os.urandom(32), os.urandom(size)
    key = AuditKey(secret)
    expected = hmac.new(secret, b"bastion-audit-pending-v1\n" + data, hashlib.sha256).hexdigest()
    assert key.seal(data) == expected
    assert key.seal(data) == expected  # the prepared HMAC is copied, never consumed
    assert key.seal(data + b"x") != expected

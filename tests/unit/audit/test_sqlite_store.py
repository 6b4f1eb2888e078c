"""The SQLite audit store: durable, group-committed, recovering, exportable."""

from __future__ import annotations

import io
import json
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from bastion.audit import AuditStoreError, SqliteAuditStore, open_audit_store
from bastion.audit.export import ARGUMENTS_HEAD_CHARS, MAX_ARGUMENTS_BYTES, write_jsonl
from bastion.audit.sqlite_store import SCHEMA_VERSION
from bastion.model import CallFinished, CallStarted, Outcome


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteAuditStore]:
    audit = open_audit_store(tmp_path / "data")
    await audit.open()
    yield audit
    await audit.close()


def started(call_id: str, arguments: Any = None, *, at: float = 1_795_586_105.123) -> CallStarted:
    return CallStarted(call_id, at, "agent-a", "db", "tools/call", "query", arguments, "streamable-http")


def rows(path: Path, sql: str = "SELECT call_id, outcome FROM calls ORDER BY seq") -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


class FailingConnection:
    """Stands for the writer's connection and fails like a dying disk (cannot be caused as root)."""

    def __init__(self, real: sqlite3.Connection) -> None:
        self.real = real

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        if sql not in ("ROLLBACK",):
            raise sqlite3.OperationalError("disk I/O error")
        return self.real.execute(sql, *args)

    def close(self) -> None:
        self.real.close()


@pytest.mark.anyio
async def test_start_finish_export_round_trip(store: SqliteAuditStore) -> None:
    await store.start(started("c1", {"sql": "select 1"}), durable=True)
    finished = CallFinished("c1", Outcome.DENIED, 12.5, is_error=True, result_size=7, error="no", check="policy")
    await store.finish(finished)
    await store.flush()

    [record] = list(store.export())

    assert record == {
        "call_id": "c1",
        "time": "2026-11-25T05:55:05.123Z",
        "agent": "agent-a",
        "server": "db",
        "method": "tools/call",
        "tool": "query",
        "arguments": {"sql": "select 1"},
        "transport": "streamable-http",
        "outcome": "denied",
        "is_error": True,
        "result_size": 7,
        "error": "no",
        "check": "policy",
        "latency_ms": 12.5,
    }


@pytest.mark.anyio
async def test_durable_start_is_committed_when_it_returns(store: SqliteAuditStore) -> None:
    await store.start(started("c1"), durable=True)

    assert rows(store.path) == [("c1", "pending")]


@pytest.mark.anyio
async def test_concurrent_durable_starts_share_commits(store: SqliteAuditStore) -> None:
    commits_before = store.commits
    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            for n in range(200):
                tg.start_soon(lambda n=n: store.start(started(f"c{n}"), durable=True))

    assert len(rows(store.path)) == 200
    assert store.commits - commits_before <= 20


@pytest.mark.parametrize(
    ("arguments", "stored"),
    [
        ({"q": "héllo 日本 🚀"}, '{"q":"héllo 日本 🚀"}'),
        (None, "null"),
        ({"when": Path("/x")}, '{"when":"/x"}'),
    ],
)
@pytest.mark.anyio
async def test_arguments_are_compact_unescaped_json(store: SqliteAuditStore, arguments: Any, stored: str) -> None:
    await store.start(started("c1", arguments), durable=True)

    assert rows(store.path, "SELECT arguments FROM calls") == [(stored,)]
    assert [r["arguments"] for r in store.export()] == [json.loads(stored)]


@pytest.mark.anyio
async def test_big_arguments_are_stored_truncated(store: SqliteAuditStore) -> None:
    big = {"blob": "é" * MAX_ARGUMENTS_BYTES}
    await store.start(started("c1", big), durable=True)

    [record] = list(store.export())
    text = json.dumps(big, separators=(",", ":"), ensure_ascii=False)
    assert record["arguments"] == {
        "_truncated": True,
        "size": len(text.encode()),
        "head": text[:ARGUMENTS_HEAD_CHARS],
    }


@pytest.mark.anyio
async def test_finish_without_start_is_recorded(store: SqliteAuditStore) -> None:
    await store.finish(CallFinished("orphan", Outcome.ERROR, 1.0, error="boom"))
    await store.flush()

    [record] = list(store.export())
    assert (record["call_id"], record["outcome"], record["error"]) == ("orphan", "error", "boom")
    assert record["is_error"] is None


@pytest.mark.anyio
async def test_reused_call_id_fails_only_that_write(store: SqliteAuditStore) -> None:
    await store.start(started("c1"), durable=True)

    with pytest.raises(AuditStoreError, match="UNIQUE"):
        await store.start(started("c1"), durable=True)
    await store.start(started("c2"), durable=True)

    assert rows(store.path) == [("c1", "pending"), ("c2", "pending")]


@pytest.mark.anyio
async def test_close_commits_queued_writes(tmp_path: Path) -> None:
    audit = SqliteAuditStore(tmp_path / "audit.db")
    await audit.open()
    for n in range(50):
        await audit.start(started(f"c{n}"), durable=False)
        await audit.finish(CallFinished(f"c{n}", Outcome.ALLOWED, 2.0, is_error=False))

    await audit.close()
    await audit.close()

    assert rows(audit.path) == [(f"c{n}", "allowed") for n in range(50)]
    with pytest.raises(AuditStoreError, match="closed"):
        await audit.start(started("late"), durable=False)
    assert not await audit.check_writable()


@pytest.mark.anyio
async def test_failed_batch_fails_its_waiters_then_the_store_recovers(store: SqliteAuditStore) -> None:
    assert await store.check_writable()
    await store.flush()  # the writer is idle: its connection can be swapped safely
    store._conn = FailingConnection(store._conn)  # type: ignore[arg-type,assignment]

    with pytest.raises(AuditStoreError, match="disk I/O error"):
        await store.start(started("lost"), durable=True)
    await store.start(started("kept"), durable=True)

    assert rows(store.path) == [("kept", "pending")]
    assert store.failed_writes == 1


@pytest.mark.anyio
async def test_check_writable_is_false_while_writes_fail(store: SqliteAuditStore) -> None:
    await store.flush()
    store._conn = FailingConnection(store._conn)  # type: ignore[arg-type,assignment]

    assert not await store.check_writable()
    assert await store.check_writable()


@pytest.mark.anyio
async def test_flush_reports_failed_non_durable_writes(store: SqliteAuditStore) -> None:
    await store.flush()
    store._conn = FailingConnection(store._conn)  # type: ignore[arg-type,assignment]
    await store.start(started("lost"), durable=False)

    with pytest.raises(AuditStoreError, match="not committed"):
        await store.flush()
    await store.flush()


@pytest.mark.anyio
async def test_export_reads_a_snapshot_while_the_writer_writes(store: SqliteAuditStore) -> None:
    for n in range(300):
        await store.start(started(f"a{n}"), durable=False)
    await store.flush()
    exported: list[dict[str, Any]] = []
    reading, written = threading.Event(), threading.Event()

    def export_across_writes() -> None:
        for record in store.export():
            exported.append(record)
            reading.set()
            written.wait(timeout=30)

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            tg.start_soon(anyio.to_thread.run_sync, export_across_writes)
            await anyio.to_thread.run_sync(reading.wait)
            for n in range(300):
                await store.start(started(f"b{n}"), durable=True)
            written.set()

    assert [r["call_id"] for r in exported] == [f"a{n}" for n in range(300)]
    assert len(list(store.export())) == 600


@pytest.mark.anyio
async def test_reopening_keeps_records_and_schema(tmp_path: Path) -> None:
    first = open_audit_store(tmp_path)
    await first.open()
    await first.start(started("c1"), durable=True)
    await first.close()

    second = open_audit_store(tmp_path)
    await second.open()
    await second.start(started("c2"), durable=True)
    await second.close()

    assert rows(second.path) == [("c1", "pending"), ("c2", "pending")]
    assert rows(second.path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert rows(second.path, "PRAGMA journal_mode") == [("wal",)]


@pytest.mark.anyio
async def test_newer_schema_is_refused(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "audit.db")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()

    with pytest.raises(AuditStoreError, match="schema"):
        await open_audit_store(tmp_path).open()


def test_write_jsonl_writes_one_compact_line_per_record() -> None:
    out = io.StringIO()

    count = write_jsonl(iter([{"a": "日本", "b": [1, 2]}, {"c": None}]), out)

    assert count == 2
    assert out.getvalue() == '{"a":"日本","b":[1,2]}\n{"c":null}\n'

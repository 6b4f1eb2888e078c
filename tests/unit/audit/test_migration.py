"""SQLite audit logs from older schemas: v1 `calls` rows become typed, chained events."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from bastion.audit import SqliteAuditStore
from bastion.audit.chain import decode_row, encode_event
from bastion.audit.events import TokenCreated
from bastion.audit.query import EventQuery
from bastion.audit.redact import PayloadPolicy
from bastion.audit.search import search, verify_log
from bastion.audit.sqlite_store import MIGRATIONS, SCHEMA_VERSION, append_chained

pytestmark = pytest.mark.anyio
AT = 1_795_586_105.0

# The v1 schema as Bastion 0.1 wrote it (src/bastion/audit/sqlite_store.py at the gateway core commit).
V1_SCHEMA = """
CREATE TABLE calls (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, call_id TEXT NOT NULL UNIQUE, time REAL NOT NULL,
    agent TEXT, server TEXT, method TEXT NOT NULL DEFAULT '', tool TEXT, arguments TEXT,
    transport TEXT NOT NULL DEFAULT '', outcome TEXT NOT NULL DEFAULT 'pending', is_error INTEGER,
    result_size INTEGER, error TEXT, check_name TEXT, latency_ms REAL, finished_at REAL);
CREATE INDEX calls_time ON calls(time);
CREATE TABLE _health (id INTEGER PRIMARY KEY CHECK (id = 1), checked_at REAL NOT NULL);
PRAGMA user_version = 1;
"""
_INSERT = (
    "INSERT INTO calls (call_id, time, agent, server, method, tool, arguments, transport, outcome, is_error,"
    " result_size, error, check_name, latency_ms, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
V1_CALLS: list[tuple[Any, ...]] = [
    # a call that went through; its arguments hold a password (v1 stored arguments as sent)
    ("c1", AT, "bot", "db", "tools/call", "query", json.dumps({"sql": "select 1", "password": "hunter2"}),
     "streamable-http", "allowed", 0, 12, None, "policy:allow-reads", 4.5, AT + 0.5),
    # denied by a check, finished after c3 started
    ("c2", AT + 1, "bot", "db", "tools/call", "drop", json.dumps({"table": "users"}), "stdio", "denied", None,
     None, "denied by policy", "policy:no-drops", 0.7, AT + 3),
    # in flight when that gateway stopped
    ("c3", AT + 2, "bot", "git", "tools/list", None, None, "sse", "pending", None, None, None, None, None, None),
    # its start was never recorded (v1 made the row from the finish alone)
    ("c4", AT + 4, None, None, "", None, None, "", "error", 1, None, "upstream died", None, 9.0, AT + 4),
]  # fmt: skip


def v1_log(path: Path) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.executescript(V1_SCHEMA)
        conn.executemany(_INSERT, V1_CALLS)
    finally:
        conn.close()


def tables(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        conn.close()


def events_of(store: SqliteAuditStore) -> list[Any]:
    return [decode_row(row) for row in store.rows(EventQuery(), newest_first=False)]


async def test_v1_calls_become_typed_chained_events(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    v1_log(path)
    store = SqliteAuditStore(path)

    await store.open()
    await store.close()

    events = events_of(store)
    assert [(e.type, e.correlation_id, e.time) for e in events] == [
        ("call.requested", "c1", AT),
        ("call.completed", "c1", AT + 0.5),
        ("call.requested", "c2", AT + 1),
        ("call.requested", "c3", AT + 2),
        ("call.completed", "c2", AT + 3),
        ("call.completed", "c4", AT + 4),
    ]
    requested, completed = events[0], events[1]
    assert (requested.agent, requested.server) == ("bot", "db")
    assert requested.details == {
        "method": "tools/call",
        "tool": "query",
        "arguments": {"sql": "select 1", "password": "[REDACTED]"},
        "transport": "streamable-http",
    }
    assert completed.details == {
        "method": "tools/call",
        "tool": "query",
        "outcome": "allowed",
        "latency_ms": 4.5,
        "is_error": False,
        "result_size": 12,
        "result": None,
        "error": None,
        "rule": "policy:allow-reads",
        "log": False,
        "approval_id": None,
        "allow_rule_id": None,
        "egress_blocked": None,
    }
    denied = events[4].details
    assert (denied["outcome"], denied["rule"], denied["error"], denied["is_error"]) == (
        "denied",
        "policy:no-drops",
        "denied by policy",
        None,
    )
    assert verify_log(store).ok
    assert "calls_v1" not in tables(path)
    assert "calls" not in tables(path)


async def test_v1_arguments_follow_the_configured_mode(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    v1_log(path)
    store = SqliteAuditStore(path, PayloadPolicy("shape"))

    await store.open()
    await store.close()

    assert events_of(store)[0].details["arguments"] == {"sql": "string", "password": "string"}


async def test_a_v2_log_keeps_its_events_and_gains_the_v1_calls_after_them(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    v1_log(path)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    MIGRATIONS[1](conn, PayloadPolicy())
    append_chained(conn, [encode_event(TokenCreated(time=AT + 10, agent="bot", token_id="t1"), PayloadPolicy())])
    conn.execute("PRAGMA user_version = 2")
    conn.execute("COMMIT")
    conn.close()
    store = SqliteAuditStore(path)

    before = search(store, EventQuery()).events  # a v2 log is readable before any writer migrates it
    await store.open()
    await store.close()

    assert [e.type for e in before] == ["token.created"]
    events = events_of(store)
    assert [e.type for e in events] == [
        "token.created",
        *("call.requested", "call.completed", "call.requested", "call.requested"),
        *("call.completed", "call.completed"),
    ]
    assert [e.seq for e in events] == list(range(1, 8))
    assert verify_log(store).ok


async def test_an_empty_v1_log_migrates_to_the_current_schema(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript(V1_SCHEMA)
    conn.close()
    store = SqliteAuditStore(path)

    await store.open()
    await store.record(TokenCreated(time=AT, agent="bot", token_id="t1"))
    await store.close()

    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()
    assert [e.seq for e in events_of(store)] == [1]

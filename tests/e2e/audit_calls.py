"""One record per request, from the audit log's events (call.requested joined with call.completed)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any

import pytest

from bastion.audit.chain import decode_row
from bastion.audit.export import event_record
from bastion.audit.query import EventQuery
from bastion.audit.store import AuditReader


def calls_of(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Exported event records -> one dict per call: what was asked, and how it ended (`pending` if never)."""
    calls: dict[str, dict[str, Any]] = {}
    for record in records:
        if record["type"] == "call.requested":
            calls[record["correlation_id"]] = {
                "call_id": record["correlation_id"],
                **{k: record[k] for k in ("time", "agent", "server", "method", "tool", "arguments", "transport")},
                "outcome": "pending",
            }
        elif record["type"] == "call.completed" and record["correlation_id"] in calls:
            call = calls[record["correlation_id"]]
            call.update({k: record[k] for k in ("outcome", "is_error", "result_size", "error", "latency_ms")})
            call["check"] = record["rule"]
    return list(calls.values())


def store_calls(reader: AuditReader) -> list[dict[str, Any]]:
    """`calls_of` every event in `reader`'s log."""
    return calls_of(event_record(decode_row(row)) for row in reader.rows(EventQuery(), newest_first=False))


def _failing_commit(*_: Any) -> None:
    raise sqlite3.OperationalError("disk I/O error (injected)")


def fail_sqlite_commits(monkeypatch: pytest.MonkeyPatch, backend: Any) -> None:
    """Make every commit of the gateway's SQLite audit backend fail inside it, on whichever thread
    makes it, like a dying disk (which cannot be caused as root): the store's own failure handling
    (fail the batch, drop the connection, reconnect) runs for real. Both the commits into the
    chain and a lone write-ahead record's into `audit_pending` (`sqlite_pending.py`)."""
    monkeypatch.setattr(backend, "_write_and_commit", _failing_commit)
    monkeypatch.setattr(backend, "_pend_and_commit", _failing_commit)

"""The v1 audit log's `calls` rows as typed events, for the SQLite migration to schema v3.

Schema v1 kept one mutable row per request (`calls`: written when the request arrived,
updated when it ended). Schema v2 renamed that table `calls_v1` and started the typed,
chained `events`; v3 converts each `calls_v1` row into the events the gateway writes today,
and the migration appends them to the chain:

- `call.requested` at the row's `time`: `method`, `tool`, `arguments`, `transport`
  (`call_id` becomes the `correlation_id`). Not for a row whose start was never recorded
  (v1 created the row from the finish alone then, with an empty `method`).
- `call.completed` at `finished_at`, for a request that ended (`outcome` not `pending`):
  `outcome`, `latency_ms`, `is_error`, `result_size`, `error`, and `check_name` as `rule`.
  v1 stored no results, so `result` is empty. A request still `pending` was in flight when
  that gateway stopped: it gets no `call.completed`, as today.

Events come out in time order (a request's `call.requested` before its `call.completed`).
v1 stored arguments as sent; they are stored again through the log's payload policy
(`audit.mode`), as any new event's are.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from typing import Any

from bastion.audit.events import AuditEvent, CallCompleted, CallRequested

LEGACY_TABLE = "calls_v1"
_COLUMNS = "call_id, agent, server, method, tool, arguments, transport, outcome, is_error, result_size, error"
_SELECT = f"""
    SELECT time, 0, seq, {_COLUMNS}, check_name, latency_ms FROM {LEGACY_TABLE} WHERE method != ''
    UNION ALL
    SELECT coalesce(finished_at, time), 1, seq, {_COLUMNS}, check_name, latency_ms FROM {LEGACY_TABLE}
        WHERE outcome != 'pending'
    ORDER BY 1, 3, 2"""


def has_legacy_calls(conn: sqlite3.Connection) -> bool:
    """Whether `conn`'s database still has the v1 table."""
    found = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (LEGACY_TABLE,))
    return found.fetchone() is not None


def legacy_call_events(conn: sqlite3.Connection) -> Iterator[AuditEvent]:
    """The events of every `calls_v1` row, in time order, streamed."""
    for row in conn.execute(_SELECT):
        at, part, _, call_id, agent, server, method, tool, arguments, transport, outcome = row[:11]
        is_error, result_size, error, check_name, latency_ms = row[11:]
        common: dict[str, Any] = {"time": at, "agent": agent, "server": server, "correlation_id": call_id}
        if part == 0:
            yield CallRequested(
                **common, method=method, tool=tool, arguments=_arguments(arguments), transport=transport or ""
            )
        else:
            yield CallCompleted(
                **common,
                method=method,
                tool=tool,
                outcome=outcome,
                latency_ms=float(latency_ms or 0.0),
                is_error=None if is_error is None else bool(is_error),
                result_size=result_size,
                error=error,
                rule=check_name,
            )


def _arguments(stored: str | None) -> Any:
    if stored is None:
        return None
    try:
        return json.loads(stored)
    except ValueError:  # v1 always wrote JSON; keep whatever else is there as text rather than lose it
        return stored

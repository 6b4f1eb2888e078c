"""Write-ahead records waiting to be chained: the `audit_pending` table (SQLite, `durability: power`).

A lone tool call's write-ahead record must be on disk before the call goes on. Committed
straight into `events`, that commit writes a page of the table, one of each of its indexes
and the chain head, a dozen WAL frames, and waits for their fsync. Committed to
`audit_pending`, a table without an index, it writes one or two frames, fsynced all the
same: the durable record costs about half as much (`benchmarks/bench_write_ahead.py`).

The next commit into `events`, by any writer of the database (this process's writer thread
within `LINGER_S`, a flush, another process sharing the file, or whichever process opens
the log next after a crash), first takes every pending row, oldest first, chains them
ahead of its own rows, and deletes them, in the same transaction: a record is in exactly
one of the two tables at any moment, and a crash anywhere leaves it in one of them.

Pending rows are not yet covered by the chain, nor by the head the audit key signs. Under an
anchor (`anchor.py`) each carries the key's seal of its columns, checked when it is chained:
a row changed in the database meanwhile (or put there by anything but Bastion) is not
chained as the event it claims to be, but as an `audit.pending_rejected` event holding what
was found, and the writer logs an error once that is committed.
"""

from __future__ import annotations

import logging
import sqlite3
import time

from bastion.audit.anchor import AuditAnchor
from bastion.audit.chain import EventRow, encode_event, row_bytes
from bastion.audit.events import PendingRejected
from bastion.audit.redact import PayloadPolicy

logger = logging.getLogger(__name__)

_ROW_COLUMNS = "time, type, agent, server, correlation_id, tool, verdict, rule, data"
_PUT = f"INSERT INTO audit_pending ({_ROW_COLUMNS}, seal) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_TAKE = f"SELECT id, {_ROW_COLUMNS}, seal FROM audit_pending ORDER BY id"
_DROP = "DELETE FROM audit_pending WHERE id <= ?"


def create_pending_table(conn: sqlite3.Connection) -> None:
    """The table (schema v6). No index: a commit to it writes as few pages as a commit can."""
    conn.execute(
        """CREATE TABLE audit_pending (
            id INTEGER PRIMARY KEY, time REAL NOT NULL, type TEXT NOT NULL,
            agent TEXT, server TEXT, correlation_id TEXT, tool TEXT, verdict TEXT, rule TEXT,
            data TEXT NOT NULL, seal TEXT)"""
    )


def put_pending(conn: sqlite3.Connection, rows: list[EventRow], anchor: AuditAnchor | None) -> None:
    """Insert `rows`, in order, sealed under `anchor`; the caller holds the write lock and commits."""
    conn.executemany(_PUT, [(*row, anchor.seal(row_bytes(row)) if anchor is not None else None) for row in rows])


def take_pending(conn: sqlite3.Connection, anchor: AuditAnchor | None, policy: PayloadPolicy) -> list[EventRow]:
    """Every pending row, oldest first, deleted from the table; the caller holds the write lock,
    chains them ahead of its own rows and commits. Under `anchor`, a row without the key's seal
    comes back as an `audit.pending_rejected` event (see the module docstring)."""
    found = conn.execute(_TAKE).fetchall()
    if not found:
        return []
    conn.execute(_DROP, (found[-1][0],))
    rows: list[EventRow] = []
    for stored in found:
        row = EventRow(*stored[1:10])
        if anchor is not None and not anchor.sealed(row_bytes(row), stored[10]):
            row = _rejected(row, policy)
        rows.append(row)
    return rows


REJECTED_REASON = "its seal does not match the audit key: changed, or written, outside Bastion"


def _rejected(row: EventRow, policy: PayloadPolicy) -> EventRow:
    event = PendingRejected(
        time=time.time(),
        agent=row.agent,
        server=row.server,
        correlation_id=row.correlation_id,
        found_type=str(row.type),
        found=str(row.data),
        reason=REJECTED_REASON,
    )
    return encode_event(event, policy)


def report_rejected(rows: list[EventRow]) -> None:
    """Log each `audit.pending_rejected` event among `rows`, once they are committed (a commit
    that fails leaves the records pending, and nothing is said of them yet)."""
    for row in rows:
        if row.type == PendingRejected.type:
            logger.error(
                "audit: a pending write-ahead record (agent %s, correlation id %s): %s; it is chained as %s",
                row.agent,
                row.correlation_id,
                REJECTED_REASON,
                PendingRejected.type,
            )


def has_pending(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM audit_pending LIMIT 1").fetchone() is not None

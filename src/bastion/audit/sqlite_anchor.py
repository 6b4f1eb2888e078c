"""The SQLite log's side of anchoring (`anchor.py`): its signed head, checked when a writer opens it."""

from __future__ import annotations

import sqlite3

from bastion.audit.anchor import AuditAnchor, opening_check
from bastion.audit.chain import Checkpoint
from bastion.audit.head import SignedHead


def add_mac_column(conn: sqlite3.Connection) -> None:
    """The migration that brought `audit_head.mac` (v5)."""
    conn.execute("ALTER TABLE audit_head ADD COLUMN mac TEXT")


def signed_head(conn: sqlite3.Connection) -> SignedHead:
    """The head as stored (`mac` empty when unsigned), in the caller's transaction if any."""
    seq, digest, mac = conn.execute("SELECT seq, hash, mac FROM audit_head WHERE id = 1").fetchone()
    return SignedHead(int(seq), str(digest), mac or "")


def open_anchored(conn: sqlite3.Connection, anchor: AuditAnchor) -> None:
    """Check the log against `anchor` before a writer appends to it (`opening_check`), signing
    the head of a log that predates anchoring. `conn` is in autocommit."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        head = signed_head(conn)
        found = conn.execute("SELECT seq, hash FROM audit_checkpoints ORDER BY seq DESC LIMIT 1").fetchone()
        start = Checkpoint(int(found[0]), str(found[1])) if found is not None else None

        def hash_at(seq: int) -> str | None:
            row = conn.execute("SELECT hash FROM events WHERE seq = ?", (seq,)).fetchone()
            return str(row[0]) if row is not None else None

        adopted = opening_check(anchor, head, start, hash_at)
        if adopted is not None:
            conn.execute("UPDATE audit_head SET mac = ? WHERE id = 1", (adopted.mac,))
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")

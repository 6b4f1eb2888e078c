"""Taking a SQLite file's write lock only when it is free, for work that must not wait for it."""

from __future__ import annotations

import sqlite3


def begin_if_free(conn: sqlite3.Connection) -> bool:
    """`BEGIN IMMEDIATE` on `conn` (in autocommit); False, nothing begun, when another
    connection holds the write lock past `conn`'s busy timeout (set it to 0 not to wait)."""
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        if exc.sqlite_errorcode in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
            return False
        raise
    return True

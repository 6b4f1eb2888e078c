"""The SQLite audit log's full-text index (FTS5), kept off the write-ahead path.

Indexing an event is the dearest part of committing it: FTS5 writes a new index segment
for every transaction, which cost a tool call about a third of Bastion's own CPU (guard and
audit together). So events are committed without it, and the writer indexes them later,
many in one transaction of their own: once `INDEX_BATCH` of them wait, and whenever it has
nothing else to do. `audit_text_head` holds the last sequence number indexed; everything
up to it is in `events_fts`, nothing after it is.

A search sees every committed event all the same. The events not yet indexed (the tail,
a few dozen while calls come in) are indexed afresh in a temporary table of the reading
connection, in the read transaction that runs the search, and the search asks both
indexes (`open_tail`, `MATCH_SQL`).
"""

from __future__ import annotations

import sqlite3

from bastion.audit.sqlite_locking import begin_if_free

INDEX_BATCH = 64
"""Events waiting to be indexed before the writer indexes them while busy."""
TEXT_HEAD_VERSION = 4
"""The schema version that brought `audit_text_head` (before it, every event was indexed on commit)."""

_TAIL = "bastion_text_tail"
INDEXED_MATCH_SQL = "SELECT rowid FROM events_fts WHERE events_fts MATCH ?"
"""The sequence numbers of the indexed events matching an FTS5 expression."""
MATCH_SQL = f"{INDEXED_MATCH_SQL} UNION ALL SELECT rowid FROM temp.{_TAIL} WHERE {_TAIL} MATCH ?"
"""The sequence numbers of the events matching an FTS5 expression (given twice), indexed or not."""

_INDEX_RANGE = (
    "INSERT INTO events_fts (rowid, tool, data) SELECT seq, tool, data FROM events WHERE seq > ? AND seq <= ?"
)


def create_head(conn: sqlite3.Connection) -> None:
    """The `audit_text_head` table, saying that every event there is now is indexed (a migration)."""
    conn.execute("CREATE TABLE audit_text_head (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL)")
    conn.execute("INSERT INTO audit_text_head (id, seq) SELECT 1, seq FROM audit_head WHERE id = 1")


def index_after(conn: sqlite3.Connection, seq: int) -> None:
    """Index every event after `seq` at once, in the caller's transaction (for migrations from
    before `audit_text_head`, whose events were all indexed when committed)."""
    conn.execute(_INDEX_RANGE, (seq, 1 << 62))


def _ends(conn: sqlite3.Connection) -> tuple[int, int]:
    """(last indexed, last committed) sequence numbers."""
    row = conn.execute(
        "SELECT t.seq, h.seq FROM audit_text_head AS t, audit_head AS h WHERE t.id = 1 AND h.id = 1"
    ).fetchone()
    return int(row[0]), int(row[1])


def unindexed(conn: sqlite3.Connection) -> int:
    """How many committed events are not yet in the index."""
    indexed, head = _ends(conn)
    return head - indexed


def catch_up(conn: sqlite3.Connection) -> bool:
    """Index every event not yet indexed, in one transaction of its own (whoever committed
    them). False, nothing done, when another connection holds the write lock and the busy
    timeout runs out. `conn` is in autocommit."""
    if not begin_if_free(conn):
        return False
    try:
        indexed, head = _ends(conn)
        if head > indexed:
            conn.execute(_INDEX_RANGE, (indexed, head))
            conn.execute("UPDATE audit_text_head SET seq = ? WHERE id = 1", (head,))
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return True


def forget_through(conn: sqlite3.Connection, cut: int) -> None:
    """Remove the events up to `cut` from the index, before they are deleted (retention), in
    the caller's transaction. Events after the text head were never indexed and are left alone:
    deleting an entry that is not in an FTS5 index corrupts it."""
    indexed, _ = _ends(conn)
    conn.execute(
        "INSERT INTO events_fts (events_fts, rowid, tool, data) SELECT 'delete', seq, tool, data FROM events"
        " WHERE seq <= ?",
        (min(cut, indexed),),
    )


def open_tail(conn: sqlite3.Connection, version: int) -> bool:
    """On a reading connection, inside its read transaction: index the events after the text
    head in the temporary table `MATCH_SQL` asks. False when there are none (or the file is
    from before the text head, when every event is indexed): `events_fts` alone is complete."""
    if version < TEXT_HEAD_VERSION:
        return False
    indexed, head = _ends(conn)
    if head <= indexed:
        return False
    conn.execute("PRAGMA temp_store = MEMORY")  # no temporary file: the reader may have nowhere to write
    conn.execute(f"CREATE VIRTUAL TABLE IF NOT EXISTS temp.{_TAIL} USING fts5(tool, data)")
    conn.execute(f"DELETE FROM temp.{_TAIL}")
    conn.execute(
        f"INSERT INTO temp.{_TAIL} (rowid, tool, data) SELECT seq, tool, data FROM main.events WHERE seq > ?",
        (indexed,),
    )
    return True

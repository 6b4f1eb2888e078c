"""The SQLite log's full-text index is kept after commits, not in them: searches still see every event."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import pytest

from bastion.audit.chain import decode_row, encode_event
from bastion.audit.events import CallRequested
from bastion.audit.query import EventQuery
from bastion.audit.redact import PayloadPolicy
from bastion.audit.retention import Retention
from bastion.audit.sqlite_store import SqliteAuditStore, SqliteBackend
from bastion.audit.sqlite_text_index import INDEX_BATCH, unindexed

pytestmark = pytest.mark.anyio
AT = 1_795_586_105.0


def requested(n: int, word: str) -> CallRequested:
    return CallRequested(
        time=AT + n, agent="a", server="s", correlation_id=f"c{n}", method="tools/call", tool="t",
        arguments={"q": f"{word} {n}"},
    )  # fmt: skip


def append(backend: SqliteBackend, conn: sqlite3.Connection, first: int, last: int, word: str) -> None:
    """Commit events `first..last` the way the writer does, leaving the index to `tidy`."""
    rows = [encode_event(requested(n, word), PayloadPolicy(mode="full")) for n in range(first, last + 1)]
    backend.append(conn, rows, health=False, sync=False)


def indexed_matches(path: Path, word: str) -> list[int]:
    """The events `word` finds in the full-text index itself (not counting the unindexed ones)."""
    db = sqlite3.connect(path)
    try:
        rows = db.execute("SELECT rowid FROM events_fts WHERE events_fts MATCH ? ORDER BY rowid", (word,))
        return [row[0] for row in rows]
    finally:
        db.close()


@dataclass
class Log:
    """A SQLite audit log, written the way the writer thread writes it."""

    path: Path
    backend: SqliteBackend
    conn: sqlite3.Connection

    def append(self, first: int, last: int, word: str) -> None:
        append(self.backend, self.conn, first, last, word)

    def tidy(self, *, idle: bool) -> None:
        self.backend.tidy(self.conn, idle)


@pytest.fixture
def log(tmp_path: Path) -> Iterator[Log]:
    path = tmp_path / "audit.db"
    backend = SqliteBackend(path)
    conn = backend.connect()
    try:
        yield Log(path, backend, conn)
    finally:
        conn.close()


def seqs(store: SqliteAuditStore, query: EventQuery, **kwargs: object) -> list[int]:
    return [decode_row(row).seq for row in store.rows(query, **kwargs)]  # type: ignore[arg-type]


def test_a_commit_leaves_the_index_alone_and_search_still_finds_the_event(log: Log) -> None:
    store = SqliteAuditStore(log.path)
    log.append(1, 3, "apple")

    assert indexed_matches(log.path, "apple") == []  # not in the index yet
    assert unindexed(log.conn) == 3
    assert seqs(store, EventQuery(text="apple"), newest_first=True) == [3, 2, 1]
    assert store.count(EventQuery(text="apple")) == 3
    assert store.count(EventQuery(text="pear")) == 0


def test_search_across_indexed_and_unindexed_events_finds_each_once_in_order(log: Log) -> None:
    store = SqliteAuditStore(log.path)
    log.append(1, 4, "apple")
    log.tidy(idle=True)  # indexes 1-4
    log.append(5, 8, "apple")
    log.append(9, 9, "pear")

    assert indexed_matches(log.path, "apple") == [1, 2, 3, 4]
    assert store.count(EventQuery(text="apple")) == 8
    assert seqs(store, EventQuery(text="apple"), newest_first=False) == [1, 2, 3, 4, 5, 6, 7, 8]
    # pages that cross from the unindexed events into the indexed ones
    assert seqs(store, EventQuery(text="apple"), newest_first=True, limit=3) == [8, 7, 6]
    assert seqs(store, EventQuery(text="apple"), newest_first=True, cursor=6, limit=3) == [5, 4, 3]
    assert seqs(store, EventQuery(text="apple", correlation_id="c5"), newest_first=True) == [5]
    assert seqs(store, EventQuery(text="pear"), newest_first=True) == [9]


def test_the_writer_indexes_in_batches_while_busy_and_everything_once_idle(log: Log) -> None:
    log.append(1, INDEX_BATCH - 1, "apple")
    log.tidy(idle=False)
    assert unindexed(log.conn) == INDEX_BATCH - 1  # too few to be worth a transaction while busy

    log.append(INDEX_BATCH, INDEX_BATCH, "apple")
    log.tidy(idle=False)
    assert unindexed(log.conn) == 0
    assert len(indexed_matches(log.path, "apple")) == INDEX_BATCH

    log.append(INDEX_BATCH + 1, INDEX_BATCH + 1, "pear")
    log.tidy(idle=True)
    assert indexed_matches(log.path, "pear") == [INDEX_BATCH + 1]


def test_indexing_never_waits_for_another_connections_write_lock(log: Log) -> None:
    other = sqlite3.connect(log.path, isolation_level=None)
    try:
        log.append(1, 2, "apple")
        other.execute("BEGIN IMMEDIATE")
        log.tidy(idle=True)  # would block for the 5 s busy timeout if it waited
        assert unindexed(log.conn) == 2
        other.execute("ROLLBACK")

        log.tidy(idle=True)
        assert unindexed(log.conn) == 0
    finally:
        other.close()


def test_a_new_writer_indexes_what_a_stopped_one_left(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    first = SqliteBackend(path)
    conn = first.connect()
    append(first, conn, 1, 2, "apple")
    conn.close()  # as if killed before it went idle

    second = SqliteBackend(path)
    conn = second.connect()
    try:
        second.tidy(conn, idle=True)
        assert indexed_matches(path, "apple") == [1, 2]
    finally:
        conn.close()


async def test_the_store_indexes_everything_when_its_writer_goes_idle(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    idle = threading.Event()

    class Watched(SqliteBackend):
        def tidy(self, conn: sqlite3.Connection, idle_now: bool) -> bool:
            due = super().tidy(conn, idle_now)
            if idle_now and unindexed(conn) == 0 and indexed_matches(path, "apple"):
                idle.set()
            return due

    store = SqliteAuditStore(path)
    store.backend = Watched(path)
    await store.open()
    try:
        for n in range(1, 4):
            await store.record(requested(n, "apple"))
        assert await _wait(idle)
        assert indexed_matches(path, "apple") == [1, 2, 3]
    finally:
        await store.close()


async def test_closing_the_store_indexes_what_is_left(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    store = SqliteAuditStore(path)
    await store.open()
    await store.record(requested(1, "apple"))
    await store.close()

    assert indexed_matches(path, "apple") == [1]


def test_retention_with_unindexed_events_keeps_the_index_sound(log: Log) -> None:
    log.append(1, 3, "apple")
    log.tidy(idle=True)  # 1-3 indexed
    log.append(4, 6, "apple")  # 4-6 not

    removed = log.backend.prune(log.conn, Retention(max_events=1), AT + 100, PayloadPolicy())

    assert removed == 5
    log.tidy(idle=True)
    log.conn.execute("INSERT INTO events_fts (events_fts, rank) VALUES ('integrity-check', 1)")  # raises if not
    assert seqs(SqliteAuditStore(log.path), EventQuery(text="apple"), newest_first=True) == [6]


async def _wait(event: threading.Event) -> bool:
    return await anyio.to_thread.run_sync(event.wait, 10)

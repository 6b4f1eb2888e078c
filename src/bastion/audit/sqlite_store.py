"""The embedded audit store: one SQLite file (WAL), group-committed.

Writes go through the shared writer thread (`audit/writer.py`), or are made on the caller's
thread when the writer is idle (every durable write under `durability: process`; under
`power`, one whose caller has no other request in flight). A batch someone waits on
(a write-ahead record) commits with `synchronous=FULL` under `durability: power`: the log
is fsynced before the caller goes on; or, for a lone call's write-ahead record where io_uring
is available, committed with `NORMAL` and the log's `fdatasync` handed to the kernel, which
the caller awaits before it forwards the call (`record_ahead`, `disk_sync.py`). Every other
commit, and all of them under `durability: process`, uses `synchronous=NORMAL`: the commit
is in the operating system's hands when it returns, so it survives a crash or kill of
Bastion, and a later synced commit (or checkpoint) puts it on disk. The writer checkpoints
the WAL itself, after a batch's waiters are woken, or when it wakes with nothing to commit
(`tidy` says when; commits made on the caller's thread never checkpoint), on a connection
of its own (`checkpoint`), so that the calls' inline commits do not wait for its syncs. It
also keeps the full-text index, which commits leave out (`sqlite_text_index.py`).

Each batch takes SQLite's write lock (`BEGIN IMMEDIATE`), reads the chain head, appends,
updates the head, commits: so the CLI (recording a token created) and the gateway can
share the file safely. Reads (search, export, verify) use read-only connections of their
own, in any thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bastion.audit import disk_sync
from bastion.audit.anchor import AuditAnchor
from bastion.audit.chain import (
    GENESIS_HASH,
    ChainedRow,
    Checkpoint,
    EventRow,
    chain_rows,
    chained_row,
    encode_event,
)
from bastion.audit.events import AuditEvent, AuditPruned
from bastion.audit.head import SignedHead
from bastion.audit.legacy_calls import LEGACY_TABLE, has_legacy_calls, legacy_call_events
from bastion.audit.private_files import make_private
from bastion.audit.query import EventQuery, fts5_expression, paged, where_clause
from bastion.audit.redact import PayloadPolicy
from bastion.audit.retention import Retention
from bastion.audit.sqlite_anchor import add_mac_column, open_anchored, signed_head
from bastion.audit.sqlite_locking import begin_if_free
from bastion.audit.sqlite_pending import (
    create_pending_table,
    has_pending,
    put_pending,
    report_rejected,
    take_pending,
)
from bastion.audit.sqlite_text_index import (
    INDEX_BATCH,
    INDEXED_MATCH_SQL,
    MATCH_SQL,
    catch_up,
    create_head,
    forget_through,
    index_after,
    open_tail,
    unindexed,
)
from bastion.audit.store import AuditStoreError, Durability
from bastion.audit.writer import GroupCommitWriter

logger = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 5_000
CHECKPOINT_EVERY = 64
"""Commits between WAL checkpoints (a commit writes some 15 pages; SQLite's own default is 1,000 pages)."""
COLUMNS = "seq, time, type, agent, server, correlation_id, tool, verdict, rule, data, hash"


def _migrate_to_v1(conn: sqlite3.Connection, policy: PayloadPolicy) -> None:
    conn.execute(
        """CREATE TABLE calls (
            seq INTEGER PRIMARY KEY AUTOINCREMENT, call_id TEXT NOT NULL UNIQUE, time REAL NOT NULL,
            agent TEXT, server TEXT, method TEXT NOT NULL DEFAULT '', tool TEXT, arguments TEXT,
            transport TEXT NOT NULL DEFAULT '', outcome TEXT NOT NULL DEFAULT 'pending', is_error INTEGER,
            result_size INTEGER, error TEXT, check_name TEXT, latency_ms REAL, finished_at REAL)"""
    )
    conn.execute("CREATE TABLE _health (id INTEGER PRIMARY KEY CHECK (id = 1), checked_at REAL NOT NULL)")


def _migrate_to_v2(conn: sqlite3.Connection, policy: PayloadPolicy) -> None:
    """Typed, hash-chained events. The v1 `calls` table is set aside as `calls_v1` (v3 converts it)."""
    conn.execute("ALTER TABLE calls RENAME TO calls_v1")
    conn.execute(
        """CREATE TABLE events (
            seq INTEGER PRIMARY KEY, time REAL NOT NULL, type TEXT NOT NULL,
            agent TEXT, server TEXT, correlation_id TEXT, tool TEXT, verdict TEXT, rule TEXT,
            data TEXT NOT NULL, hash TEXT NOT NULL)"""
    )
    for column in ("time", "agent", "server", "tool", "type", "correlation_id", "verdict", "rule"):
        conn.execute(f"CREATE INDEX events_{column} ON events({column})")
    conn.execute("CREATE VIRTUAL TABLE events_fts USING fts5(tool, data, content='events', content_rowid='seq')")
    conn.execute("CREATE TABLE audit_head (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL, hash TEXT)")
    conn.execute("INSERT INTO audit_head VALUES (1, 0, ?)", (GENESIS_HASH,))
    conn.execute(
        "CREATE TABLE audit_checkpoints (seq INTEGER PRIMARY KEY, hash TEXT NOT NULL, time REAL NOT NULL,"
        " removed INTEGER NOT NULL)"
    )


def _migrate_to_v3(conn: sqlite3.Connection, policy: PayloadPolicy) -> None:
    """The v1 requests in `calls_v1` become typed events at the end of the chain (`legacy_calls.py`),
    stored through `policy`; the table is then dropped. All in the migration's transaction."""
    if not has_legacy_calls(conn):
        return
    (before,) = conn.execute("SELECT seq FROM audit_head WHERE id = 1").fetchone()
    batch: list[EventRow] = []
    for event in legacy_call_events(conn):
        batch.append(encode_event(event, policy))
        if len(batch) == MIGRATION_BATCH:
            append_chained(conn, batch)
            batch = []
    if batch:
        append_chained(conn, batch)
    index_after(conn, before)  # v3 indexed every event as it was committed
    conn.execute(f"DROP TABLE {LEGACY_TABLE}")


def _migrate_to_v4(conn: sqlite3.Connection, policy: PayloadPolicy) -> None:
    """Events are indexed for full-text search after they are committed; `audit_text_head`
    says how far (every event so far is). `verdict` and `rule`, set on one event of a call's
    three at most, are indexed only where set (searches ask for a value, never for none)."""
    create_head(conn)
    for column in ("verdict", "rule"):
        conn.execute(f"DROP INDEX events_{column}")
        conn.execute(f"CREATE INDEX events_{column} ON events({column}) WHERE {column} IS NOT NULL")


def _migrate_to_v5(conn: sqlite3.Connection, policy: PayloadPolicy) -> None:
    """The chain head carries its signature (`audit_head.mac`, see `anchor.py`)."""
    add_mac_column(conn)


def _migrate_to_v6(conn: sqlite3.Connection, policy: PayloadPolicy) -> None:
    """Lone write-ahead records wait in `audit_pending` before they are chained (`sqlite_pending.py`)."""
    create_pending_table(conn)


MIGRATIONS: tuple[Callable[[sqlite3.Connection, PayloadPolicy], None], ...] = (
    _migrate_to_v1,
    _migrate_to_v2,
    _migrate_to_v3,
    _migrate_to_v4,
    _migrate_to_v5,
    _migrate_to_v6,
)
"""`MIGRATIONS[n]` brings a database from `PRAGMA user_version` n to n + 1."""
SCHEMA_VERSION = len(MIGRATIONS)
READABLE_VERSIONS = range(2, SCHEMA_VERSION + 1)
"""Schema versions whose `events` table this Bastion reads (v2 differs from v3 only by `calls_v1`;
before v4 every event is in the full-text index)."""
MIGRATION_BATCH = 10_000

_INSERT_EVENT = f"INSERT INTO events ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_SET_HEAD = "UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1"
_SET_SIGNED_HEAD = "UPDATE audit_head SET seq = ?, hash = ?, mac = ? WHERE id = 1"
_UPSERT_HEALTH = (
    "INSERT INTO _health (id, checked_at) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET checked_at = excluded.checked_at"
)


_SYNCHRONOUS = {True: "PRAGMA synchronous = FULL", False: "PRAGMA synchronous = NORMAL"}


class WriterConnection(sqlite3.Connection):
    """The writing connection. It remembers the `synchronous` level and busy timeout last set
    on it, so that a commit does not repeat them: each such PRAGMA costs a few microseconds,
    and a call's commit made three of them."""

    synchronous: bool | None = None
    busy_timeout_ms: int | None = None


def _set_synchronous(conn: sqlite3.Connection, full: bool) -> None:
    """`synchronous=FULL` (the commit is fsynced) or `NORMAL` on `conn`, unless it is so already."""
    if isinstance(conn, WriterConnection) and conn.synchronous is full:
        return
    conn.execute(_SYNCHRONOUS[full])
    if isinstance(conn, WriterConnection):
        conn.synchronous = full


def _set_busy_timeout(conn: sqlite3.Connection, milliseconds: int) -> None:
    """How long a statement on `conn` waits for another connection's lock, unless it is so already."""
    if isinstance(conn, WriterConnection) and conn.busy_timeout_ms == milliseconds:
        return
    conn.execute(f"PRAGMA busy_timeout = {int(milliseconds)}")
    if isinstance(conn, WriterConnection):
        conn.busy_timeout_ms = milliseconds


class SqliteBackend:
    """The SQLite side of the shared write path (see `WriterBackend`).

    `fsync`: synced batches are fsynced (`durability: power`); otherwise no commit waits
    for the disk (`durability: process`).
    """

    def __init__(
        self, path: Path, policy: PayloadPolicy | None = None, *, fsync: bool = True, anchor: AuditAnchor | None = None
    ) -> None:
        self.path = path
        self.anchor = anchor
        """Signs every head it commits and checks the one it chains onto (see `anchor.py`)."""
        self.policy = policy if policy is not None else PayloadPolicy()
        """How migrated v1 requests store their arguments."""
        self.description = str(path)
        self.wal_path = f"{path}-wal"
        """SQLite's write-ahead log, beside the database (WAL mode)."""
        self.fsync = fsync
        self.pends_inline = fsync
        """Fsynced, an inline append goes to `audit_pending` (see `append_if_free`)."""
        self._inline_full: bool | None = None
        """The `synchronous` level of the last inline append (None: none yet); see `_rest`."""
        self._commits_since_checkpoint = 0
        self._checkpointer: sqlite3.Connection | None = None
        """The connection `checkpoint` uses (the writer thread's only), opened on first use."""
        self._unindexed = 0
        """Events committed (by this backend, or found at connect) and not yet full-text indexed."""

    def connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        make_private(self.path)
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, factory=WriterConnection)
        try:
            _set_busy_timeout(conn, BUSY_TIMEOUT_MS)
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode != "wal":
                logger.warning("audit log %s: journal mode is %s, not WAL", self.path, mode)
            _set_synchronous(conn, self.fsync)
            # Checkpoints (which fsync) run in `tidy`, after the waiters of a batch are woken,
            # rather than inside whichever commit happens to fill the WAL.
            conn.execute("PRAGMA wal_autocheckpoint = 0")
            _migrate(conn, self.path, self.policy)
            if self.anchor is not None:
                open_anchored(conn, self.anchor)
            self._unindexed = unindexed(conn)  # a writer that stopped (or crashed) may have left some
            if has_pending(conn):  # a process that crashed (or one still running) left some: chain them now
                conn.execute("BEGIN IMMEDIATE")
                self._write_and_commit(conn, [], health=False)
        except BaseException:
            conn.close()
            raise
        return conn

    def append(self, conn: sqlite3.Connection, rows: list[EventRow], health: bool, sync: bool) -> None:
        # In WAL mode FULL fsyncs the log at this commit (and so every commit before it);
        # NORMAL leaves the log to the OS until a later FULL commit or a checkpoint.
        _set_synchronous(conn, sync and self.fsync)
        _set_busy_timeout(conn, BUSY_TIMEOUT_MS)
        conn.execute("BEGIN IMMEDIATE")
        self._write_and_commit(conn, rows, health)
        self._rest(conn)

    def _rest(self, conn: sqlite3.Connection) -> None:
        """Leave `conn` set as the next inline append wants it (its `synchronous` level, no busy
        timeout), once one has been made: the writer thread changes them back, off the event
        loop, rather than a call's write-ahead commit on the loop, before its sync can start.
        (Under concurrent calls, which all go to the writer, that is two settings a batch.)
        The batch is committed by then: should this fail, the inline append sets them itself."""
        if self._inline_full is not None:
            with contextlib.suppress(sqlite3.Error):
                _set_synchronous(conn, self._inline_full)
                _set_busy_timeout(conn, 0)

    def append_if_free(self, conn: sqlite3.Connection, rows: list[EventRow], *, synced: bool = True) -> bool:
        """Commit `rows` durably as the store is configured, but False at once, nothing written,
        when another connection holds the write lock: for callers that must not wait. With
        `pends_inline` (fsynced, `power`) they go to `audit_pending`, to be chained by the next
        commit (`sqlite_pending.py`); otherwise straight into the chain. Not `synced`: the
        commit does not wait for the disk, and the caller syncs the log (`wal_path`) itself."""
        self._inline_full = self.fsync and synced
        _set_synchronous(conn, self._inline_full)
        _set_busy_timeout(conn, 0)  # `append` leaves it so (`_rest`); `prune` sets its own
        if not begin_if_free(conn):
            return False
        if self.pends_inline:
            self._pend_and_commit(conn, rows)
        else:
            self._write_and_commit(conn, rows, health=False)
        return True

    def _pend_and_commit(self, conn: sqlite3.Connection, rows: list[EventRow]) -> None:
        put_pending(conn, rows, self.anchor)
        conn.execute("COMMIT")
        self._commits_since_checkpoint += 1

    def _write_and_commit(self, conn: sqlite3.Connection, rows: list[EventRow], health: bool) -> None:
        pending = take_pending(conn, self.anchor, self.policy)
        rows = pending + rows  # older than `rows`: chained first
        head = append_chained(conn, rows, self.anchor) if rows else None
        if health:
            conn.execute(_UPSERT_HEALTH, (time.time(),))
        conn.execute("COMMIT")
        report_rejected(pending)
        if head is not None and self.anchor is not None:
            self.anchor.committed(head)
        self._commits_since_checkpoint += 1
        self._unindexed += len(rows)

    def tidy(self, conn: sqlite3.Connection, idle: bool) -> bool:
        if self._unindexed >= (1 if idle else INDEX_BATCH):
            _set_busy_timeout(conn, 0)  # housekeeping never waits for another process's lock
            if catch_up(conn):
                self._unindexed = 0
                self._commits_since_checkpoint += 1
        if self.anchor is not None:
            self.anchor.write_head_file()
        if self._commits_since_checkpoint < CHECKPOINT_EVERY:
            return False
        self._commits_since_checkpoint = 0  # counted with the writing connection held, as every commit is
        return True

    def checkpoint(self) -> None:
        """A passive checkpoint of the WAL, on a connection of its own: it neither takes the
        write lock nor holds the writing connection, so the calls' commits on the event loop go
        on while it copies pages and syncs. Under `synchronous=NORMAL` SQLite syncs the log
        before it copies from it, and the database after."""
        if self._checkpointer is None:
            self._checkpointer = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._checkpointer.execute("PRAGMA synchronous = NORMAL")
        try:
            self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error:
            self.release()  # opened afresh next time
            raise

    def release(self) -> None:
        if self._checkpointer is not None:
            with contextlib.suppress(sqlite3.Error):
                self._checkpointer.close()
            self._checkpointer = None

    def housekeeping_due(self) -> float | None:
        return self.anchor.head_file_due() if self.anchor is not None else None

    def prune(self, conn: sqlite3.Connection, retention: Retention, now: float, policy: PayloadPolicy) -> int:
        _set_busy_timeout(conn, BUSY_TIMEOUT_MS)
        conn.execute("BEGIN IMMEDIATE")
        try:
            removed, head = self._prune(conn, retention, now, policy)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        if head is not None and self.anchor is not None:
            self.anchor.committed(head)
        return removed

    def _prune(
        self, conn: sqlite3.Connection, retention: Retention, now: float, policy: PayloadPolicy
    ) -> tuple[int, SignedHead | None]:
        head_seq: int = conn.execute("SELECT seq FROM audit_head WHERE id = 1").fetchone()[0]
        cut = head_seq - retention.max_events if retention.max_events is not None else 0
        cutoff = retention.cutoff(now)
        if cutoff is not None:
            by_age = conn.execute("SELECT max(seq) FROM events WHERE time < ?", (cutoff,)).fetchone()[0]
            cut = max(cut, by_age or 0)
        first = conn.execute("SELECT min(seq) FROM events").fetchone()[0]
        if first is None or cut < first:
            return 0, None
        through_hash: str = conn.execute("SELECT hash FROM events WHERE seq = ?", (cut,)).fetchone()[0]
        forget_through(conn, cut)
        removed = conn.execute("DELETE FROM events WHERE seq <= ?", (cut,)).rowcount
        conn.execute("INSERT INTO audit_checkpoints VALUES (?, ?, ?, ?)", (cut, through_hash, now, removed))
        event = AuditPruned(time=now, through_seq=cut, through_hash=through_hash, removed=removed)
        head = append_chained(conn, [encode_event(event, policy)], self.anchor)
        return int(removed), head

    def discard(self, conn: sqlite3.Connection) -> None:
        # Nothing to roll back, or the connection is unusable: either way it is replaced.
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        with contextlib.suppress(sqlite3.Error):
            conn.close()
        if self.anchor is not None:  # closing (or failing): what is committed goes to the head file now
            try:
                self.anchor.write_head_file(force=True)
            except OSError as exc:
                logger.error("audit head file %s not written: %s", self.anchor.head_file, exc)


class SqliteAuditStore(GroupCommitWriter[sqlite3.Connection]):
    """`AuditStore` on a SQLite file. `commits` and `failed_writes` are for tests and metrics."""

    def __init__(
        self,
        path: Path,
        policy: PayloadPolicy | None = None,
        retention: Retention | None = None,
        *,
        durability: Durability = "power",
        anchor: AuditAnchor | None = None,
    ) -> None:
        policy = policy or PayloadPolicy()
        backend = SqliteBackend(path, policy, fsync=durability == "power", anchor=anchor)
        # A commit is quick enough to make on the caller's thread: always without fsync, and
        # with it for a caller with nothing else to do (see writer.py).
        super().__init__(
            backend, policy, retention, inline=backend.append_if_free, inline_waits_for_disk=durability == "power"
        )
        self.path = path
        self._sqlite = backend
        self._append_unsynced = functools.partial(backend.append_if_free, synced=False)

    async def record_ahead(self, event: AuditEvent, *, alone: bool = False) -> asyncio.Future[None] | None:
        """Under `power`, a lone write-ahead record is committed on the caller's thread without
        waiting for the disk, and the log's `fdatasync` is handed to the event loop's io_uring
        (`disk_sync.py`): the future resolves once the record is on disk. Otherwise (no io_uring,
        the database busy, not alone, `process`) as `record`: on disk, or committed, when it returns."""
        if alone and self._sqlite.fsync:
            ring = disk_sync.for_loop(asyncio.get_running_loop())
            if ring is not None and self._commit_inline(
                self._append_unsynced, encode_event(event, self.policy), synced=False
            ):
                return self._synced_later(ring)
        await self.record(event, alone=alone)
        return None

    def _synced_later(self, ring: disk_sync.BackgroundSync) -> asyncio.Future[None] | None:
        """Start syncing the log; when the ring takes no more, sync it now."""
        wal = self._sqlite.wal_path
        try:
            on_disk = ring.start(wal)
            if on_disk is None:
                disk_sync.sync_now(wal)
        except OSError as exc:
            self.failed_writes += 1
            raise AuditStoreError(f"audit log {wal} could not be synced: {exc}") from exc
        return on_disk

    @property
    def description(self) -> str:
        return str(self.path)

    def rows(
        self, query: EventQuery, *, newest_first: bool, cursor: int | None = None, limit: int | None = None
    ) -> Iterator[ChainedRow]:
        def statement(tail: bool) -> tuple[str, list[Any]]:
            conditions, params = where_clause(query, "sqlite", table="events")
            columns = ", ".join(f"events.{c}" for c in COLUMNS.split(", "))
            source, order = "events", "events.seq"
            if query.text is not None and tail:
                conditions.append(f"events.seq IN ({MATCH_SQL})")
                params += [fts5_expression(query.text)] * 2
            elif query.text is not None:
                source, order = "events_fts JOIN events ON events.seq = events_fts.rowid", "events_fts.rowid"
                conditions.append("events_fts MATCH ?")
                params.append(fts5_expression(query.text))
            select = f"SELECT {columns} FROM {source}"
            sql = paged(
                select, conditions, params, "sqlite",
                newest_first=newest_first, cursor=cursor, limit=limit, seq="events.seq", order=order,
            )  # fmt: skip
            return sql, params

        yield from map(chained_row, self._search(statement, text=query.text is not None))

    def count(self, query: EventQuery) -> int:
        def statement(tail: bool) -> tuple[str, list[Any]]:
            conditions, params = where_clause(query, "sqlite")
            if query.text is not None:
                conditions.append(f"seq IN ({MATCH_SQL if tail else INDEXED_MATCH_SQL})")
                params += [fts5_expression(query.text)] * (2 if tail else 1)
            where = " WHERE " + " AND ".join(conditions) if conditions else ""
            return f"SELECT count(*) FROM events{where}", params

        found = _first(self._search(statement, text=query.text is not None))
        return int(found[0]) if found is not None else 0

    def chain_ends(self) -> tuple[Checkpoint | None, Checkpoint | None]:
        checkpoint = _first(self._read("SELECT seq, hash FROM audit_checkpoints ORDER BY seq DESC LIMIT 1", []))
        head = _first(self._read("SELECT seq, hash FROM audit_head WHERE id = 1", []))
        return (
            Checkpoint(*checkpoint) if checkpoint is not None else None,
            Checkpoint(*head) if head is not None else None,
        )

    def pending_count(self) -> int:
        """Write-ahead records waiting in `audit_pending` to be chained (`sqlite_pending.py`): after
        a crash, until a Bastion opens the log again; 0 on schemas without the table."""
        found = _first(self._read("SELECT count(*) FROM sqlite_master WHERE name = 'audit_pending'", []))
        if not found or not found[0]:
            return 0
        counted = _first(self._read("SELECT count(*) FROM audit_pending", []))
        return int(counted[0]) if counted else 0

    def signed_head(self) -> SignedHead | None:
        found = _first(self._read("SELECT * FROM audit_head WHERE id = 1", []))  # before v5: no `mac`
        return SignedHead(int(found[1]), str(found[2]), (found[3] or "") if len(found) > 3 else "") if found else None

    def _read(self, sql: str, params: list[Any]) -> Iterator[tuple[Any, ...]]:
        """Rows of `sql`, streamed through a read-only connection that lives as long as the iteration."""
        return self._search(lambda tail: (sql, params), text=False)

    def _search(self, statement: Callable[[bool], tuple[str, list[Any]]], *, text: bool) -> Iterator[tuple[Any, ...]]:
        """Rows of `statement(tail)`, streamed like `_read`. With `text`, in one read transaction
        after the events not yet in the full-text index are indexed in a temporary table
        (`tail`: there are some, and `MATCH_SQL` finds them)."""
        if not self.path.exists():
            raise AuditStoreError(f"no audit log at {self.path}")
        try:
            conn = sqlite3.connect(self.path.resolve().as_uri() + "?mode=ro", uri=True, check_same_thread=False)
        except sqlite3.Error as exc:
            raise AuditStoreError(f"cannot read audit log {self.path}: {exc}") from exc
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version not in READABLE_VERSIONS:
                raise AuditStoreError(f"{self.path} has audit schema v{version}; this Bastion reads v{SCHEMA_VERSION}")
            tail = False
            if text:
                conn.execute("BEGIN")  # one snapshot for the tail and the search
                tail = open_tail(conn, version)
            yield from conn.execute(*statement(tail))
        except sqlite3.Error as exc:
            raise AuditStoreError(f"cannot read audit log {self.path}: {exc}") from exc
        finally:
            conn.close()


def append_chained(conn: sqlite3.Connection, rows: list[EventRow], anchor: AuditAnchor | None = None) -> SignedHead:
    """Chain `rows` after the head and insert them (the full-text index follows later, see
    `sqlite_text_index.py`); the caller holds the write lock (`BEGIN IMMEDIATE`) and commits.
    With `anchor`, the head chained onto must be signed, and the new one is. Returns the new head."""
    if anchor is None:  # also on schemas before v5 (migrations): the head's `mac`, if any, no longer fits
        seq, digest = conn.execute("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()
        head = SignedHead(seq, digest)
    else:
        head = signed_head(conn)
        anchor.check_chain_onto(head)
    chained = chain_rows(Checkpoint(head.seq, head.hash), rows)
    conn.executemany(_INSERT_EVENT, [(c.seq, *c.row, c.hash) for c in chained])
    last = chained[-1]
    if anchor is None:
        conn.execute(_SET_HEAD, (last.seq, last.hash))
        return SignedHead(last.seq, last.hash)
    new = anchor.sign(last.seq, last.hash)
    conn.execute(_SET_SIGNED_HEAD, (new.seq, new.hash, new.mac))
    return new


def _migrate(conn: sqlite3.Connection, path: Path, policy: PayloadPolicy) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        version: int = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise AuditStoreError(f"{path} has audit schema v{version}; this Bastion knows up to v{SCHEMA_VERSION}")
        for migration in MIGRATIONS[version:]:
            migration(conn, policy)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _first(rows: Iterator[tuple[Any, ...]]) -> tuple[Any, ...] | None:
    """The first row, closing the read connection at once."""
    try:
        return next(rows, None)
    finally:
        close: Callable[[], None] | None = getattr(rows, "close", None)
        if close is not None:
            close()

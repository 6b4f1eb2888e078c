"""The adversary with write access to the audit database (issue 13, item 4): truncating the
newest events, emptying the log, deleting its head row, rolling it back to an older copy,
editing a row (with or without recomputing the chain) are each reported by `bastion audit
verify`, and a writer refuses to sign on top of them. On SQLite and on a real PostgreSQL."""

from __future__ import annotations

import contextlib
import logging
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest
import yaml
from click.testing import CliRunner

from bastion.audit import open_audit_store
from bastion.audit.anchor import AuditAnchor, anchor_at
from bastion.audit.chain import GENESIS_HASH, EventRow, encode_event, link
from bastion.audit.events import CallRequested, PendingRejected
from bastion.audit.query import EventQuery
from bastion.audit.redact import PayloadPolicy
from bastion.audit.retention import Retention
from bastion.audit.search import search, verify_log
from bastion.audit.sqlite_store import SqliteAuditStore, SqliteBackend
from bastion.audit.store import AuditStore, AuditStoreError
from bastion.cli.main import main

AT = 1_795_586_105.0
EVENTS = 10


@dataclass
class Log:
    """An anchored audit log as the gateway writes it, its config file, and raw SQL on its database."""

    kind: str
    url: str
    data: Path
    config: Path
    sql: Callable[..., list[tuple[Any, ...]]]
    mark: str

    @property
    def anchor(self) -> AuditAnchor:
        return anchor_at(self.data)

    def store(self) -> AuditStore:
        return open_audit_store(self.data, url=self.url, anchor=self.anchor)

    def write(self, count: int, first: int = 0) -> None:
        async def run() -> None:
            store = self.store()
            await store.open()
            for n in range(first, first + count):
                event = CallRequested(time=AT + n, agent="bot", server="db", correlation_id=f"c{n}",
                                      method="tools/call", tool="read_query", arguments={"n": n})  # fmt: skip
                await store.record(event)
            await store.close()

        anyio.run(run)

    def q(self, statement: str) -> str:
        return statement.replace("?", self.mark)

    def verify(self, *options: str) -> tuple[int, str]:
        result = CliRunner().invoke(main, ["audit", "verify", "--config", str(self.config), *options])
        return result.exit_code, result.stdout + result.stderr

    def head(self) -> str:
        result = CliRunner().invoke(main, ["audit", "head", "--config", str(self.config)])
        assert result.exit_code == 0, result.stderr
        return result.stdout.strip()

    def snapshot(self) -> Callable[[], None]:
        """Take a copy of the database now; the returned function puts it back (a rollback)."""
        if self.kind == "sqlite":
            path = self.data / "audit.db"
            copy = self.data.parent / "audit-copy.db"
            shutil.copy(path, copy)

            def restore() -> None:
                for suffix in ("-wal", "-shm"):
                    path.with_name(path.name + suffix).unlink(missing_ok=True)
                shutil.copy(copy, path)

            return restore
        columns = {
            "events": "seq, time, type, agent, server, correlation_id, tool, verdict, rule, data, hash",
            "audit_head": "id, seq, hash, mac",
            "audit_checkpoints": "seq, hash, time, removed",
        }
        for table, names in columns.items():
            self.sql(f"CREATE TABLE copy_{table} AS SELECT {names} FROM {table}")

        def restore_tables() -> None:
            for table, names in columns.items():
                self.sql(f"DELETE FROM {table}")
                self.sql(f"INSERT INTO {table} ({names}) SELECT {names} FROM copy_{table}")

        return restore_tables


@contextlib.contextmanager
def sqlite_url(tmp_path: Path) -> Iterator[tuple[str, Callable[..., list[tuple[Any, ...]]], str]]:
    path = tmp_path / "data" / "audit.db"

    def sql(statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            return conn.execute(statement, params).fetchall()
        finally:
            conn.close()

    yield f"sqlite://{path}", sql, "?"


@contextlib.contextmanager
def postgres_url(tmp_path: Path) -> Iterator[tuple[str, Callable[..., list[tuple[Any, ...]]], str]]:
    from tests.unit.audit.postgres import postgres_schema

    with postgres_schema() as url:

        def sql(statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
            import psycopg

            with psycopg.connect(url, autocommit=True) as conn:
                cursor = conn.execute(statement.encode(), params)
                return cursor.fetchall() if cursor.description is not None else []

        yield url, sql, "%s"


@pytest.fixture(params=["sqlite", "postgresql"])
def log(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Log]:
    opener = sqlite_url if request.param == "sqlite" else postgres_url
    with opener(tmp_path) as (url, sql, mark):
        config = tmp_path / "bastion.yaml"
        audit = {"url": url, "key_file": str(tmp_path / "data" / "audit.key")}  # a shared log's key is configured
        settings = {"data_dir": str(tmp_path / "data"), "audit": audit, "servers": {"t": {"command": "true"}}}
        config.write_text(yaml.safe_dump(settings))
        made = Log(request.param, url, tmp_path / "data", config, sql, mark)
        made.write(EVENTS)
        yield made


def hash_of(log: Log, seq: int) -> str:
    return str(log.sql(log.q("SELECT hash FROM events WHERE seq = ?"), (seq,))[0][0])


def refuses_to_write(log: Log) -> str:
    """The message a writer opening the tampered log fails with."""

    async def run() -> None:
        store = log.store()
        await store.open()
        await store.close()

    with pytest.raises(AuditStoreError) as caught:
        anyio.run(run)
    return str(caught.value)


def test_an_intact_log_verifies_and_its_head_is_pinned(log: Log) -> None:
    code, out = log.verify("--expect", log.head())

    assert code == 0, out
    assert f"OK, {EVENTS} event(s) verified" in out
    assert log.head().startswith(f"{EVENTS}:{hash_of(log, EVENTS)}:")


def test_truncating_the_newest_events_and_moving_the_head_is_reported(log: Log) -> None:
    log.sql(log.q("DELETE FROM events WHERE seq > ?"), (7,))
    log.sql(log.q("UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1"), (7, hash_of(log, 7)))

    code, out = log.verify()

    assert code == 1
    assert "is not signed by the audit key" in out
    assert "the log ends at 7 but the head file" in refuses_to_write(log)


def test_truncating_the_newest_events_alone_is_reported(log: Log) -> None:
    log.sql(log.q("DELETE FROM events WHERE seq > ?"), (7,))

    code, out = log.verify()

    assert code == 1
    assert "newest event(s) removed" in out


@pytest.mark.parametrize("head_file_too", [False, True], ids=["log", "log-and-head-file"])
def test_emptying_the_log_is_reported(log: Log, head_file_too: bool) -> None:
    log.sql("DELETE FROM events")
    log.sql(log.q("UPDATE audit_head SET seq = 0, hash = ?, mac = NULL WHERE id = 1"), (GENESIS_HASH,))
    if head_file_too:
        log.anchor.head_file.unlink()

    code, out = log.verify()

    assert code == 1
    if head_file_too:
        assert "no head file" in out
    else:
        assert f"the log ends at 0 but the head file {log.anchor.head_file} says {EVENTS}" in out
        assert "the log ends at 0" in refuses_to_write(log)


def test_deleting_the_head_row_is_reported(log: Log) -> None:
    log.sql("DELETE FROM audit_head")

    code, out = log.verify()

    assert code == 1
    assert "no chain head" in out or "BROKEN" in out


@pytest.mark.parametrize("head_file_too", [False, True], ids=["database", "database-and-head-file"])
def test_rolling_back_to_an_older_copy_is_reported(log: Log, head_file_too: bool) -> None:
    restore = log.snapshot()
    old_head_file = log.anchor.head_file.read_bytes()
    log.write(5, first=EVENTS)
    pinned = log.head()
    restore()
    if head_file_too:
        log.anchor.head_file.write_bytes(old_head_file)

    code, out = log.verify()
    pinned_code, pinned_out = log.verify("--expect", pinned)

    if head_file_too:
        assert code == 0, "an older copy of both, signed by the key, is only caught by a head kept elsewhere"
    else:
        assert code == 1
        assert f"the log ends at {EVENTS} but the head file" in out
        assert "older copy restored" in out
        assert "the log ends at" in refuses_to_write(log)
    assert pinned_code == 1
    expected_says = f"the log ends at {EVENTS} but the expected head says {EVENTS + 5}"
    assert (expected_says if head_file_too else f"the log ends at {EVENTS} but") in pinned_out


def test_an_edited_row_is_reported(log: Log) -> None:
    log.sql(log.q("UPDATE events SET data = ? WHERE seq = ?"), ('{"method":"tools/call","arguments":{"n":0}}', 4))

    code, out = log.verify()

    assert code == 1
    assert "BROKEN at sequence number 4" in out
    assert "content does not match its hash" in out


def test_an_edited_row_with_the_chain_recomputed_is_reported(log: Log) -> None:
    """The hashes are unkeyed: whoever writes the database can recompute them after an edit."""
    rows = log.sql("SELECT seq, time, type, agent, server, correlation_id, tool, verdict, rule, data FROM events"
                   " ORDER BY seq")  # fmt: skip
    digest = GENESIS_HASH
    for seq, *columns in rows:
        row = EventRow(*columns)
        if seq == 4:
            row = row._replace(data=row.data.replace('"n":3', '"n":333'))
            log.sql(log.q("UPDATE events SET data = ? WHERE seq = ?"), (row.data, seq))
        digest = link(digest, seq, row)
        log.sql(log.q("UPDATE events SET hash = ? WHERE seq = ?"), (digest, seq))
    log.sql(log.q("UPDATE audit_head SET hash = ? WHERE id = 1"), (digest,))

    code, out = log.verify()

    assert code == 1
    assert "is not signed by the audit key" in out


def test_a_head_from_another_log_is_not_contained(log: Log) -> None:
    seq = log.head().split(":")[0]

    code, out = log.verify("--expect", f"{seq}:{'f' * 64}")

    assert code == 1
    assert "does not contain the expected head's event" in out


def test_replicas_sharing_the_key_write_one_log_and_a_stranger_is_refused(log: Log, tmp_path: Path) -> None:
    replica = Log(log.kind, log.url, tmp_path / "replica", log.config, log.sql, log.mark)
    shutil.copytree(log.data, replica.data, ignore=shutil.ignore_patterns("audit.db*"))  # the same key
    replica.write(3, first=EVENTS)
    log.write(2, first=EVENTS + 3)
    stranger = Log(log.kind, log.url, tmp_path / "stranger", log.config, log.sql, log.mark)

    code, out = log.verify()

    assert code == 0, out
    assert f"OK, {EVENTS + 5} event(s) verified" in out
    assert "not signed by this Bastion's key" in refuses_to_write(stranger)


def test_a_shared_log_without_a_configured_key_is_said_to_be_unanchored(tmp_path: Path) -> None:
    with postgres_url(tmp_path) as (url, sql, mark):
        config = tmp_path / "bastion.yaml"
        settings = {"data_dir": str(tmp_path / "data"), "audit": {"url": url}, "servers": {"t": {"command": "true"}}}
        config.write_text(yaml.safe_dump(settings))
        log = Log("postgresql", url, tmp_path / "data", config, sql, mark)

        async def run() -> None:
            store = open_audit_store(log.data, url=url)
            await store.open()
            await store.record(CallRequested(method="tools/call", tool="t"))
            await store.close()

        anyio.run(run)
        code, out = log.verify()

    assert code == 0, out
    assert "not anchored" in out
    assert not (tmp_path / "data" / "audit.key").exists()


def test_a_log_pruned_by_retention_still_verifies_against_its_head_file(log: Log) -> None:
    pinned = log.head()

    async def prune() -> None:
        store = open_audit_store(log.data, url=log.url, anchor=log.anchor, retention=Retention(max_events=3))
        await store.open()
        await store.prune_now()
        await store.close()

    anyio.run(prune)
    code, out = log.verify("--expect", pinned)

    assert code == 0, out
    assert "since retention checkpoint" in out


@pytest.mark.parametrize("head", ["12", "x:y", f"1:{'g' * 64}", f"1:{'a' * 64}:short"])
def test_a_malformed_expected_head_is_a_usage_error(log: Log, head: str) -> None:
    code, out = log.verify("--expect", head)

    assert code == 2
    assert "--expect" in out


def test_an_empty_log_opened_twice_verifies(tmp_path: Path) -> None:
    with sqlite_url(tmp_path) as (url, sql, mark):
        config = tmp_path / "bastion.yaml"
        config.write_text(yaml.safe_dump({"data_dir": str(tmp_path / "data"), "servers": {"t": {"command": "true"}}}))
        log = Log("sqlite", url, tmp_path / "data", config, sql, mark)
        log.write(0)
        log.write(0)

        code, out = log.verify()

    assert code == 0, out
    assert "OK, 0 event(s) verified" in out


def test_a_running_writer_refuses_to_sign_over_a_truncated_log(log: Log) -> None:
    async def run() -> str:
        store = log.store()
        await store.open()
        try:
            await store.record(CallRequested(method="tools/call", tool="t"))
            log.sql(log.q("DELETE FROM events WHERE seq > ?"), (7,))
            log.sql(log.q("UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1"), (7, hash_of(log, 7)))
            with pytest.raises(AuditStoreError) as caught:
                await store.record(CallRequested(method="tools/call", tool="t"))
            return str(caught.value)
        finally:
            await store.close()

    message = anyio.run(run)

    assert "not signed by this Bastion's key" in message
    assert log.sql("SELECT max(seq) FROM events") == [(7,)]


# A write-ahead record waiting to be chained (`audit_pending`, SQLite under `durability: power`)


@pytest.mark.parametrize(
    "tampering",
    [
        "UPDATE audit_pending SET data = replace(data, '\"t\"', '\"other\"'), tool = 'other'",
        "UPDATE audit_pending SET seal = NULL",
    ],
    ids=["changed", "unsealed"],
)
def test_a_pending_record_changed_outside_bastion_is_not_chained_as_itself(
    tmp_path: Path, tampering: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Pending records are not yet under the signed head: under an anchor each carries the key's
    seal, and one that does not match is chained as `audit.pending_rejected`, holding what was found."""
    path = tmp_path / "audit.db"
    backend = SqliteBackend(path, fsync=True, anchor=anchor_at(tmp_path))
    conn = backend.connect()
    try:
        assert backend.append_if_free(
            conn,
            [
                encode_event(
                    CallRequested(
                        agent="bot", server="db", correlation_id="c1", method="tools/call", tool="t", arguments={}
                    ),
                    PayloadPolicy(),
                )
            ],
        )
        conn.execute(tampering)
        with caplog.at_level(logging.ERROR, logger="bastion.audit.sqlite_pending"):
            backend.append(conn, [], health=False, sync=True)
        backend.anchor.write_head_file(force=True)  # type: ignore[union-attr]
    finally:
        conn.close()
    events = search(SqliteAuditStore(path), EventQuery()).events
    assert [e.type for e in events] == [PendingRejected.type]
    assert events[0].correlation_id == "c1"
    assert events[0].details["found_type"] == "call.requested"
    assert "seal does not match" in caplog.text
    assert verify_log(SqliteAuditStore(path), anchor_at(tmp_path)).ok

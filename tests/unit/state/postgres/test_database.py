"""The shared-database plumbing: migrations (versioned, idempotent, one replica at a time) and the listener."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator

import psycopg
import pytest

from bastion.state.postgres import DatabaseUnavailable, PostgresDatabase
from bastion.state.postgres.listener import NotificationListener
from tests.unit.audit.postgres import postgres_schema

STEPS = (
    ("CREATE TABLE widgets (id INTEGER PRIMARY KEY)",),
    ("ALTER TABLE widgets ADD COLUMN name TEXT", "INSERT INTO widgets VALUES (1, 'first')"),
)


@pytest.fixture
def url() -> Iterator[str]:
    with postgres_schema() as schema_url:
        yield schema_url


@pytest.fixture
def database(url: str) -> Iterator[PostgresDatabase]:
    opened = PostgresDatabase(url)
    yield opened
    opened.close()


def rows(url: str, query: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(query.encode()).fetchall()


def test_migrations_are_versioned_and_idempotent(database: PostgresDatabase, url: str) -> None:
    database.migrate("widgets", STEPS[:1])
    assert database.version("widgets") == 1
    database.migrate("widgets", STEPS)
    database.migrate("widgets", STEPS)  # nothing left to do
    assert database.version("widgets") == 2
    assert rows(url, "SELECT id, name FROM widgets") == [(1, "first")]


def test_replicas_starting_at_once_migrate_once(url: str) -> None:
    replicas = [PostgresDatabase(url) for _ in range(6)]
    start = threading.Barrier(len(replicas))
    failures: list[BaseException] = []

    def migrate(replica: PostgresDatabase) -> None:
        start.wait(10)
        try:
            replica.migrate("widgets", STEPS)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=migrate, args=(replica,)) for replica in replicas]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    for replica in replicas:
        replica.close()
    assert failures == []
    assert rows(url, "SELECT id, name FROM widgets") == [(1, "first")]  # the data step ran exactly once


def test_a_newer_schema_is_refused(database: PostgresDatabase) -> None:
    database.migrate("widgets", STEPS)
    with pytest.raises(DatabaseUnavailable, match="newer than this Bastion understands"):
        database.migrate("widgets", STEPS[:1])


def test_an_unreachable_database_is_a_clear_error() -> None:
    with pytest.raises(
        DatabaseUnavailable, match=re.escape("cannot connect to database_url postgresql://u:***@127.0.0.1:9")
    ):
        PostgresDatabase("postgresql://u:secret@127.0.0.1:9/db?connect_timeout=2")


def test_a_missing_schema_is_a_clear_error(url: str) -> None:
    with pytest.raises(DatabaseUnavailable, match="no schema in the search_path exists"):
        PostgresDatabase(url.replace("search_path%3D", "search_path%3Dnot_there_"))


def test_channels_are_per_schema(url: str, database: PostgresDatabase) -> None:
    assert database.channel("approvals") == f"bastion.approvals.{database.schema}"
    assert database.schema in url


def test_notifications_arrive_and_a_lost_connection_resets_subscribers(database: PostgresDatabase) -> None:
    heard: list[str] = []
    got, reset = threading.Event(), threading.Event()

    def on_notify(payload: str) -> None:
        heard.append(payload)
        got.set()

    database.listener.subscribe(database.channel("test"), on_notify, reset.set)
    assert database.listener.healthy
    reset.clear()  # the first connection counts as a reset too
    with database.pool.connection() as conn:
        conn.execute("SELECT pg_notify(%s, 'one')", (database.channel("test"),))
    assert got.wait(10)
    assert heard == ["one"]

    # Kill the listener's connection from the server side: it reconnects, re-listens, and
    # tells subscribers that notifications may have been missed.
    pid = database.listener.backend_pid
    assert pid is not None
    with database.pool.connection() as conn:
        killed = conn.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()
    assert killed == (True,)
    assert reset.wait(15)
    got.clear()
    with database.pool.connection() as conn:
        conn.execute("SELECT pg_notify(%s, 'two')", (database.channel("test"),))
    assert got.wait(10)
    assert heard[-1] == "two"


def _subscribe_after(barrier: threading.Barrier, listener: NotificationListener, errors: list[BaseException]) -> None:
    barrier.wait()
    try:
        listener.subscribe("race", lambda _payload: None, lambda: None, timeout=5)
    except BaseException as exc:  # recorded for the test's assertion
        errors.append(exc)


def test_closing_while_the_first_subscriber_starts_the_thread_is_safe(url: str) -> None:
    """`close` racing the `subscribe` that starts the listener thread neither raises nor leaks it."""
    for _ in range(20):
        listener = NotificationListener(url, description="race")
        errors: list[BaseException] = []
        barrier = threading.Barrier(2)
        worker = threading.Thread(target=_subscribe_after, args=(barrier, listener, errors))
        worker.start()
        barrier.wait()
        listener.close()  # raised "cannot join thread before it is started" when it lost the race
        worker.join(10)
        assert not worker.is_alive()
        assert errors == []
        thread = listener._thread
        assert thread is None or not thread.is_alive()


def test_a_closed_listener_starts_no_thread(url: str) -> None:
    listener = NotificationListener(url, description="closed")
    listener.close()
    listener.subscribe("late", lambda _payload: None, lambda: None, timeout=5)
    assert listener._thread is None
    assert not listener.healthy

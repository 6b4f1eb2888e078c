"""One process's handle on the shared PostgreSQL database: pool, migrations, notifications.

Every store of a process that names the same `database_url` shares one `PostgresDatabase`
(`acquire`, reference-counted): one small connection pool and one LISTEN connection.
Tables are created unqualified, in the connection's `search_path` (by default `public`;
`?options=-csearch_path%3Dname` in the URL picks another schema).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from bastion.state.errors import StateStoreUnavailable as DatabaseUnavailable
from bastion.state.errors import redacted_url
from bastion.state.postgres.listener import NotificationListener

CONNECT_TIMEOUT_S = 10
POOL_MAX_SIZE = 8
_VERSIONS_TABLE = "bastion_state_schema"
_MIGRATION_LOCK = f"SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.{_VERSIONS_TABLE}'))"
_CHANNEL_MAX = 63  # PostgreSQL identifiers (channel names) are cut at 63 bytes

Migration = Sequence[str]
"""The statements that bring one store's tables from version n to n + 1."""


class PostgresDatabase:
    """A connection pool on `url`, the store migrations, and a lazily started listener."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.description = redacted_url(url)
        try:
            with psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S) as conn:
                row = conn.execute("SELECT current_schema()").fetchone()
        except psycopg.Error as exc:
            raise DatabaseUnavailable(f"cannot connect to database_url {self.description}: {exc}") from exc
        if row is None or row[0] is None:
            raise DatabaseUnavailable(
                f"database_url {self.description}: no schema in the search_path exists; create it first"
            )
        self.schema: str = row[0]
        self.pool = ConnectionPool(
            url,
            min_size=1,
            max_size=POOL_MAX_SIZE,
            kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT_S},
            open=False,
            name="bastion-state",
        )
        self.pool.open(wait=True, timeout=CONNECT_TIMEOUT_S)
        self._listener: NotificationListener | None = None
        self._lock = threading.Lock()
        self._users = 0

    def channel(self, kind: str) -> str:
        """The NOTIFY channel of one kind of change in this schema (replicas on other schemas never hear it)."""
        return f"bastion.{kind}.{self.schema}"[:_CHANNEL_MAX]

    @property
    def listener(self) -> NotificationListener:
        """The process's LISTEN connection, started on first use."""
        with self._lock:
            if self._listener is None:
                self._listener = NotificationListener(self.url, description=self.description)
            return self._listener

    @property
    def hearing_changes(self) -> bool:
        """False while the listener, once started, has no connection (changes go unheard)."""
        with self._lock:
            return self._listener is None or self._listener.healthy

    def migrate(self, component: str, migrations: Sequence[Migration]) -> None:
        """Bring `component`'s tables to version `len(migrations)`.

        Idempotent, and safe when several replicas start at once: each migrates under a
        transaction-scoped advisory lock, so one applies the steps and the others find them done.
        """
        latest = len(migrations)
        try:
            with self.pool.connection() as conn, conn.transaction():
                conn.execute(_MIGRATION_LOCK)
                conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {_VERSIONS_TABLE} "
                    "(component TEXT PRIMARY KEY, version INTEGER NOT NULL)"
                )
                row = conn.execute(
                    f"SELECT version FROM {_VERSIONS_TABLE} WHERE component = %s", (component,)
                ).fetchone()
                version = 0 if row is None else int(row[0])
                if version > latest:
                    raise DatabaseUnavailable(
                        f"{self.description}: {component} schema version {version} is newer than this Bastion "
                        f"understands ({latest}); upgrade Bastion"
                    )
                for step in migrations[version:]:
                    for statement in step:
                        conn.execute(statement.encode())
                conn.execute(
                    f"INSERT INTO {_VERSIONS_TABLE} (component, version) VALUES (%s, %s) "
                    "ON CONFLICT (component) DO UPDATE SET version = excluded.version",
                    (component, latest),
                )
        except psycopg.Error as exc:
            raise DatabaseUnavailable(f"cannot prepare the {component} tables in {self.description}: {exc}") from exc

    def version(self, component: str) -> int:
        """The schema version `component`'s tables are at (0: not created)."""
        with self.pool.connection() as conn:
            row = conn.execute(f"SELECT version FROM {_VERSIONS_TABLE} WHERE component = %s", (component,)).fetchone()
        return 0 if row is None else int(row[0])

    def close(self) -> None:
        """Close the pool and the listener."""
        with self._lock:
            listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        self.pool.close()


def probe(url: str) -> str:
    """What `bastion doctor` says of `database_url`: the server, schema and store versions.

    Raises `DatabaseUnavailable` when it cannot be reached or has no usable schema.
    """
    description = redacted_url(url)
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S) as conn:
            row = conn.execute("SELECT current_schema(), current_setting('server_version')").fetchone()
            if row is None or row[0] is None:
                raise DatabaseUnavailable(f"{description}: no schema in the search_path exists; create it first")
            exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (_VERSIONS_TABLE,)).fetchone()
            versions = (
                conn.execute(f"SELECT component, version FROM {_VERSIONS_TABLE} ORDER BY component").fetchall()
                if exists is not None and exists[0]
                else []
            )
    except psycopg.Error as exc:
        raise DatabaseUnavailable(f"cannot connect to {description}: {exc}") from exc
    stores = ", ".join(f"{name} v{version}" for name, version in versions) or "no tables yet (made on first start)"
    return f"{description} (PostgreSQL {row[1]}, schema {row[0]}): {stores}"


_shared: dict[str, PostgresDatabase] = {}
_shared_lock = threading.Lock()


class SharedDatabase:
    """A reference to the process's `PostgresDatabase` for one URL; `release()` when done."""

    def __init__(self, database: PostgresDatabase) -> None:
        self.database = database
        self._released = False

    def release(self) -> None:
        """Drop this reference; the last one closes the pool and the listener."""
        if self._released:
            return
        self._released = True
        with _shared_lock:
            database = self.database
            database._users -= 1
            if database._users > 0:
                return
            _shared.pop(database.url, None)
        database.close()


def acquire(url: str) -> SharedDatabase:
    """The process's `PostgresDatabase` for `url`, opened on first use."""
    with _shared_lock:
        database = _shared.get(url)
        if database is None:
            database = PostgresDatabase(url)
            _shared[url] = database
        database._users += 1
        return SharedDatabase(database)


def first(conn: psycopg.Connection[Any], query: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
    """The first row of `query`, or None."""
    row: tuple[Any, ...] | None = conn.execute(query.encode(), params).fetchone()
    return row

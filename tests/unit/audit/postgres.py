"""A PostgreSQL backend for the store suite: a schema of its own per test, dropped afterwards."""

from __future__ import annotations

import contextlib
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bastion.audit import open_audit_store
from bastion.audit.redact import PayloadPolicy
from bastion.audit.retention import Retention
from bastion.audit.store import AuditStore
from tests.unit.audit.conftest import Backend

BASE_URL = os.environ.get("BASTION_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
_started = False


def _connect() -> Any:
    import psycopg

    return psycopg.connect(BASE_URL, autocommit=True, connect_timeout=5)


def ensure_postgres() -> None:
    """Connect to the test database; start the local cluster once if it is down; skip loudly if it cannot."""
    global _started
    try:
        _connect().close()
        return
    except Exception as first:
        if _started:
            pytest.skip(f"PostgreSQL at {BASE_URL} is unreachable: {first}")
    _started = True
    versions = sorted(p.name for p in Path("/etc/postgresql").glob("*")) if Path("/etc/postgresql").exists() else []
    if versions:
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "start"],
            check=False,
            capture_output=True,
            timeout=60,
        )
    try:
        _connect().close()
    except Exception as exc:
        pytest.skip(f"PostgreSQL SKIPPED: {BASE_URL} is unreachable and could not be started: {exc}")


@contextlib.contextmanager
def postgres_schema() -> Iterator[str]:
    """A fresh schema; yields a URL whose connections use it. Dropped on exit."""
    ensure_postgres()
    schema = f"bastion_test_{uuid.uuid4().hex[:12]}"
    with _connect() as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{BASE_URL}?options=-csearch_path%3D{schema}"
    finally:
        with _connect() as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@contextlib.contextmanager
def postgres_backend() -> Iterator[Backend]:
    with postgres_schema() as url:

        def make(policy: PayloadPolicy | None = None, retention: Retention | None = None) -> AuditStore:
            return open_audit_store(Path("."), url=url, policy=policy, retention=retention)

        def sql(statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
            import psycopg

            with psycopg.connect(url, autocommit=True) as conn:
                cursor = conn.execute(statement, params)
                return cursor.fetchall() if cursor.description is not None else []

        yield Backend("postgresql", make, sql, mark="%s")


@contextlib.contextmanager
def postgres_role_schema() -> Iterator[tuple[str, str]]:
    """A fresh login role owning a fresh schema; yields (URL connecting as that role into it, role). Dropped on exit."""
    ensure_postgres()
    name = f"bastion_test_{uuid.uuid4().hex[:12]}"
    with _connect() as conn:
        conn.execute(f"CREATE ROLE {name} LOGIN")
        conn.execute(f"CREATE SCHEMA {name} AUTHORIZATION {name}")
    host = BASE_URL.split("@", 1)[1]
    try:
        yield f"postgresql://{name}@{host}?options=-csearch_path%3D{name}", name
    finally:
        with _connect() as conn:
            _terminate(conn, name)
            conn.execute(f"DROP SCHEMA {name} CASCADE")
            conn.execute(f"DROP ROLE {name}")


def set_read_only(role: str, read_only: bool) -> None:
    """Make `role`'s sessions read-only (as after a failover to a standby), or writable again, and end
    its current sessions so that its clients reconnect into the new state."""
    with _connect() as conn:
        setting = "SET default_transaction_read_only = on" if read_only else "RESET default_transaction_read_only"
        conn.execute(f"ALTER ROLE {role} {setting}")
        _terminate(conn, role)


def _terminate(conn: Any, role: str) -> None:
    conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,))

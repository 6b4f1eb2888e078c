"""The audit store suite runs against every backend: SQLite always, PostgreSQL on 127.0.0.1:5432."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bastion.audit import open_audit_store
from bastion.audit.redact import PayloadPolicy
from bastion.audit.retention import Retention
from bastion.audit.store import AuditStore


@dataclass
class Backend:
    """Makes stores on one database and runs raw SQL on it (to tamper, or to look)."""

    name: str
    make: Callable[..., AuditStore]
    sql: Callable[[str, tuple[Any, ...]], list[tuple[Any, ...]]]
    mark: str = "?"

    def q(self, sql: str) -> str:
        """`sql` written with `?` placeholders, in this backend's style."""
        return sql.replace("?", self.mark)


def sqlite_backend(folder: Path) -> Backend:
    path = folder / "audit.db"

    def make(policy: PayloadPolicy | None = None, retention: Retention | None = None) -> AuditStore:
        return open_audit_store(folder, url=f"sqlite://{path}", policy=policy, retention=retention)

    def sql(statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            return conn.execute(statement, params).fetchall()
        finally:
            conn.close()

    return Backend("sqlite", make, sql)


BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        yield sqlite_backend(tmp_path)
        return
    from tests.unit.audit.postgres import postgres_backend

    with postgres_backend() as made:
        yield made


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[AuditStore]:
    audit = backend.make()
    await audit.open()
    yield audit
    await audit.close()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"

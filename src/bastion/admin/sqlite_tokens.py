"""Admin tokens in `<data_dir>/admin_tokens.db` (SQLite, WAL), shared by the gateway and the CLI."""

from __future__ import annotations

import builtins
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bastion.admin import tokens
from bastion.admin.tokens import AdminIdentity, Role, admin_token_id, holder_of, identity_of, new_admin_token
from bastion.state import sqlite_schema
from bastion.state.fresh_ids import insert_with_fresh_id

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE IF NOT EXISTS admin_tokens (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        role TEXT NOT NULL,
        token_hash TEXT NOT NULL UNIQUE,
        created_at REAL NOT NULL,
        revoked_at REAL
    )
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


class SqliteAdminTokenStore:
    """`AdminTokenStore` on a SQLite file."""

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        self._path = Path(path)
        self._clock = clock
        self._lock = threading.Lock()
        self._db = sqlite_schema.open_private(self._path)
        with self._lock:
            sqlite_schema.migrate(self._db, MIGRATIONS, what="admin token", path=self._path)

    def create(self, name: str, role: Role) -> tuple[AdminIdentity, str]:
        return insert_with_fresh_id(
            lambda: new_admin_token(name, role, self._clock()),
            lambda made: self._write(tokens.INSERT, tokens.insert_parameters(*made)),
            sqlite3.IntegrityError,
        )

    def _write(self, statement: str, params: tuple[object, ...]) -> int:
        with self._lock:
            return self._db.execute(statement, params).rowcount

    def _row(self, statement: str, params: tuple[object, ...]) -> tuple[Any, ...] | None:
        with self._lock:
            row: tuple[Any, ...] | None = self._db.execute(statement, params).fetchone()
        return row

    def list(self) -> builtins.list[AdminIdentity]:
        with self._lock:
            rows = self._db.execute(tokens.SELECT_ALL).fetchall()
        return [identity_of(row) for row in rows]

    def get(self, token_id: str) -> AdminIdentity | None:
        row = self._row(tokens.SELECT_BY_ID, (token_id,))
        return identity_of(row) if row is not None else None

    def revoke(self, token_id: str) -> bool:
        return self._write(tokens.REVOKE, (self._clock(), token_id)) > 0

    def verify(self, token: str) -> AdminIdentity | None:
        public_id = admin_token_id(token)
        return None if public_id is None else holder_of(token, self._row(tokens.SELECT_WITH_HASH, (public_id,)))

    def close(self) -> None:
        with self._lock:
            self._db.close()

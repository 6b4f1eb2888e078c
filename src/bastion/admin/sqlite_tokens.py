"""Admin tokens in `<data_dir>/admin_tokens.db` (SQLite, WAL), shared by the gateway and the CLI."""

from __future__ import annotations

import builtins
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

from bastion import sqlite_schema
from bastion.admin.tokens import (
    COLUMNS,
    ID_ATTEMPTS,
    AdminIdentity,
    Role,
    admin_token_id,
    holder_of,
    identity_of,
    new_admin_token,
    token_hash,
)

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
        for _ in range(ID_ATTEMPTS):
            identity, token = new_admin_token(name, role, self._clock())
            try:
                with self._lock:
                    self._db.execute(
                        "INSERT INTO admin_tokens (id, name, role, token_hash, created_at) VALUES (?, ?, ?, ?, ?)",
                        (identity.id, name, role.label, token_hash(token), identity.created_at),
                    )
            except sqlite3.IntegrityError:
                continue
            return identity, token
        raise RuntimeError("could not pick a unique admin token id")

    def list(self) -> builtins.list[AdminIdentity]:
        with self._lock:
            rows = self._db.execute(f"SELECT {COLUMNS} FROM admin_tokens ORDER BY created_at, id").fetchall()
        return [identity_of(row) for row in rows]

    def get(self, token_id: str) -> AdminIdentity | None:
        with self._lock:
            row = self._db.execute(f"SELECT {COLUMNS} FROM admin_tokens WHERE id = ?", (token_id,)).fetchone()
        return identity_of(row) if row is not None else None

    def revoke(self, token_id: str) -> bool:
        with self._lock:
            cursor = self._db.execute(
                "UPDATE admin_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (self._clock(), token_id),
            )
        return cursor.rowcount > 0

    def verify(self, token: str) -> AdminIdentity | None:
        public_id = admin_token_id(token)
        if public_id is None:
            return None
        with self._lock:
            row = self._db.execute(
                f"SELECT {COLUMNS}, token_hash FROM admin_tokens WHERE id = ?", (public_id,)
            ).fetchone()
        return holder_of(token, row)

    def close(self) -> None:
        with self._lock:
            self._db.close()

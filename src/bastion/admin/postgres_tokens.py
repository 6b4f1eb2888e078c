"""Admin tokens in the shared PostgreSQL database (`database_url`).

Every check reads the table (admin requests are few), so a token revoked anywhere is refused
by every replica from the next request on.
"""

from __future__ import annotations

import builtins
import time
from collections.abc import Callable

import psycopg

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
from bastion.postgres import acquire

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE admin_tokens (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            role TEXT NOT NULL,
            token_hash TEXT NOT NULL UNIQUE,
            created_at DOUBLE PRECISION NOT NULL,
            revoked_at DOUBLE PRECISION)""",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)


class PostgresAdminTokenStore:
    """`AdminTokenStore` on PostgreSQL."""

    def __init__(self, url: str, *, clock: Callable[[], float] = time.time) -> None:
        self._shared = acquire(url)
        self._db = self._shared.database
        self._clock = clock
        try:
            self._db.migrate("admin_tokens", MIGRATIONS)
        except BaseException:
            self._shared.release()
            raise

    def create(self, name: str, role: Role) -> tuple[AdminIdentity, str]:
        for _ in range(ID_ATTEMPTS):
            identity, token = new_admin_token(name, role, self._clock())
            try:
                with self._db.pool.connection() as conn:
                    conn.execute(
                        "INSERT INTO admin_tokens (id, name, role, token_hash, created_at) VALUES (%s, %s, %s, %s, %s)",
                        (identity.id, name, role.label, token_hash(token), identity.created_at),
                    )
            except psycopg.errors.UniqueViolation:
                continue
            return identity, token
        raise RuntimeError("could not pick a unique admin token id")

    def list(self) -> builtins.list[AdminIdentity]:
        with self._db.pool.connection() as conn:
            rows = conn.execute(f"SELECT {COLUMNS} FROM admin_tokens ORDER BY created_at, id").fetchall()
        return [identity_of(row) for row in rows]

    def get(self, token_id: str) -> AdminIdentity | None:
        with self._db.pool.connection() as conn:
            row = conn.execute(f"SELECT {COLUMNS} FROM admin_tokens WHERE id = %s", (token_id,)).fetchone()
        return identity_of(row) if row is not None else None

    def revoke(self, token_id: str) -> bool:
        with self._db.pool.connection() as conn:
            cursor = conn.execute(
                "UPDATE admin_tokens SET revoked_at = %s WHERE id = %s AND revoked_at IS NULL",
                (self._clock(), token_id),
            )
        return cursor.rowcount > 0

    def verify(self, token: str) -> AdminIdentity | None:
        public_id = admin_token_id(token)
        if public_id is None:
            return None
        with self._db.pool.connection() as conn:
            row = conn.execute(f"SELECT {COLUMNS}, token_hash FROM admin_tokens WHERE id = %s", (public_id,)).fetchone()
        return holder_of(token, row)

    def close(self) -> None:
        self._shared.release()

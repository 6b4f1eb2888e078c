"""Admin tokens in the shared PostgreSQL database (`database_url`).

Every check reads the table (admin requests are few), so a token revoked anywhere is refused
by every replica from the next request on.
"""

from __future__ import annotations

import builtins
import time
from collections.abc import Callable
from typing import Any

import psycopg

from bastion.admin import tokens
from bastion.admin.tokens import AdminIdentity, Role, admin_token_id, holder_of, identity_of, new_admin_token
from bastion.state.fresh_ids import insert_with_fresh_id
from bastion.state.postgres import acquire
from bastion.state.postgres.placeholders import postgres

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
        return insert_with_fresh_id(
            lambda: new_admin_token(name, role, self._clock()),
            lambda made: self._write(tokens.INSERT, tokens.insert_parameters(*made)),
            psycopg.errors.UniqueViolation,
        )

    def _write(self, statement: str, params: tuple[object, ...]) -> int:
        with self._db.pool.connection() as conn:
            return conn.execute(postgres(statement), params).rowcount

    def _row(self, statement: str, params: tuple[object, ...]) -> tuple[Any, ...] | None:
        with self._db.pool.connection() as conn:
            return conn.execute(postgres(statement), params).fetchone()

    def list(self) -> builtins.list[AdminIdentity]:
        with self._db.pool.connection() as conn:
            rows = conn.execute(postgres(tokens.SELECT_ALL)).fetchall()
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
        self._shared.release()

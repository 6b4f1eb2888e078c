"""Agent tokens in a SQLite file (`<data_dir>/tokens.db`, WAL), shared by the gateway and the CLI.

`verify` reads a copy in memory, reloaded when another connection changed the file
(checked at most every `refresh_interval` seconds: the bound on how long a token revoked
by the CLI keeps working). A token not in the copy has the file checked at once, so one the
CLI has just created works at once.
"""

from __future__ import annotations

import builtins
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from bastion.auth import tokens
from bastion.auth.tokens import ActiveTokens, TokenInfo, active_tokens, info_of, new_token
from bastion.auth.verified_tokens import VerifiedTokens
from bastion.model import Principal
from bastion.state import sqlite_schema
from bastion.state.fresh_ids import insert_with_fresh_id
from bastion.state.reload_cache import ReloadCache

DEFAULT_REFRESH_INTERVAL = 0.5
"""Seconds between checks for changes made by other processes (bounds revocation delay)."""

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE tokens (
        id TEXT PRIMARY KEY,
        agent TEXT NOT NULL,
        servers TEXT,
        token_hash TEXT NOT NULL UNIQUE,
        created_at REAL NOT NULL,
        expires_at REAL,
        revoked_at REAL,
        last_used_at REAL
    );
    CREATE INDEX tokens_agent ON tokens (agent);
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


class SqliteTokenStore:
    """`TokenStore` on a SQLite file. `clock` returns Unix time; it decides expiry and paces the change checks."""

    def __init__(
        self,
        path: Path,
        *,
        clock: Callable[[], float] = time.time,
        refresh_interval: float = DEFAULT_REFRESH_INTERVAL,
    ) -> None:
        self._path = Path(path)
        self._clock = clock
        self._lock = threading.Lock()
        self._verified = VerifiedTokens()
        self._db = sqlite_schema.open_private(self._path)
        with self._lock:
            sqlite_schema.migrate(self._db, MIGRATIONS, what="token", path=self._path)
        self._reader = sqlite_schema.connect(self._path)
        self._cache: ReloadCache[ActiveTokens] = ReloadCache(
            self._load,
            lambda: sqlite_schema.data_version(self._reader),
            empty={},
            check_interval=refresh_interval,
        )

    def _load(self) -> ActiveTokens:
        return active_tokens(self._reader.execute(tokens.SELECT_ACTIVE))

    def create(
        self,
        agent: str,
        servers: Iterable[str] | None = None,
        expires_in: float | None = None,
    ) -> tuple[TokenInfo, str]:
        now = self._clock()
        return insert_with_fresh_id(
            lambda: new_token(agent, servers, expires_in, now),
            lambda made: self._write(tokens.INSERT, tokens.insert_parameters(*made)),
            sqlite3.IntegrityError,
        )

    def _write(self, statement: str, params: tuple[object, ...]) -> int:
        """Run one change; returns the rows changed."""
        with self._lock:
            cursor = self._db.execute(statement, params)
            self._cache.invalidate()
        return cursor.rowcount

    def list(self) -> builtins.list[TokenInfo]:
        with self._lock:
            rows = self._db.execute(tokens.SELECT_ALL).fetchall()
        return [info_of(row) for row in rows]

    def revoke(self, token_id: str) -> bool:
        return self._write(tokens.REVOKE, (self._clock(), token_id)) > 0

    def revoke_agent(self, agent: str) -> int:
        return self._write(tokens.REVOKE_AGENT, (self._clock(), agent))

    def verify(self, token: str) -> Principal | None:
        now = self._clock()
        with self._lock:
            principal = self._verified.principal(token, self._cache.get(now), now)
            if principal is None:
                # Not among the tokens copied: one that another process (`bastion token create`) made
                # since the copy's last check is accepted at once. A revocation by another process is
                # still seen within `refresh_interval`: a token in the copy is not checked again.
                principal = self._verified.principal(token, self._cache.recheck(now), now)
        return principal

    def close(self) -> None:
        """Close the database connections."""
        with self._lock:
            self._reader.close()
            self._db.close()

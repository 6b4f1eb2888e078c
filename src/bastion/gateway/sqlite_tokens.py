"""Agent tokens in a SQLite file (`<data_dir>/tokens.db`, WAL), shared by the gateway and the CLI.

`verify` reads a copy in memory, reloaded when another connection changed the file
(checked at most every `refresh_interval` seconds: the bound on how long a token revoked
by the CLI keeps working).
"""

from __future__ import annotations

import builtins
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from bastion import sqlite_schema
from bastion.gateway.tokens import (
    COLUMNS,
    ID_ATTEMPTS,
    ActiveTokens,
    TokenInfo,
    active_tokens,
    info_of,
    new_token,
    principal_for,
    servers_json,
    token_hash,
)
from bastion.model import Principal
from bastion.reload_cache import ReloadCache

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
        return active_tokens(self._reader.execute(f"SELECT {COLUMNS} FROM tokens WHERE revoked_at IS NULL"))

    def create(
        self,
        agent: str,
        servers: Iterable[str] | None = None,
        expires_in: float | None = None,
    ) -> tuple[TokenInfo, str]:
        now = self._clock()
        for attempt in range(ID_ATTEMPTS):
            info, token = new_token(agent, servers, expires_in, now)
            try:
                with self._lock:
                    self._db.execute(
                        "INSERT INTO tokens (id, agent, servers, token_hash, created_at, expires_at) "
                        "VALUES (?, ?, ?, ?, ?, ?)",
                        (info.id, agent, servers_json(info.servers), token_hash(token), now, info.expires_at),
                    )
                    self._cache.invalidate()
            except sqlite3.IntegrityError:
                if attempt == ID_ATTEMPTS - 1:
                    raise
                continue  # the 32-bit public id collided with an existing one
            return info, token
        raise AssertionError("unreachable")

    def list(self) -> builtins.list[TokenInfo]:
        with self._lock:
            rows = self._db.execute(f"SELECT {COLUMNS} FROM tokens ORDER BY created_at, id").fetchall()
        return [info_of(row) for row in rows]

    def revoke(self, token_id: str) -> bool:
        with self._lock:
            cursor = self._db.execute(
                "UPDATE tokens SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?", (self._clock(), token_id)
            )
            self._cache.invalidate()
        return cursor.rowcount > 0

    def revoke_agent(self, agent: str) -> int:
        with self._lock:
            cursor = self._db.execute(
                "UPDATE tokens SET revoked_at = ? WHERE agent = ? AND revoked_at IS NULL", (self._clock(), agent)
            )
            self._cache.invalidate()
        return cursor.rowcount

    def verify(self, token: str) -> Principal | None:
        now = self._clock()
        with self._lock:
            active = self._cache.get(now)
        return principal_for(token, active, now)

    def close(self) -> None:
        """Close the database connections."""
        with self._lock:
            self._reader.close()
            self._db.close()

"""Agent bearer tokens: `bst_<id>_<secret>`, stored as hashes in SQLite.

The plaintext token exists once, when `TokenStore.create` returns it. The database holds
only its SHA-256. `verify` is on the hot path: it reads an in-memory copy of the table,
reloaded when another connection (the `bastion` CLI, another replica) changed the file.
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import json
import os
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from bastion import sqlite_schema
from bastion.model import Principal

TOKEN_PREFIX = "bst_"
DEFAULT_REFRESH_INTERVAL = 0.5
"""Seconds between checks for changes made by other processes (bounds revocation delay)."""

_TOKEN_RE = re.compile(r"bst_([0-9a-f]{8})_([A-Za-z0-9_-]{43})")
_MIGRATIONS: tuple[str, ...] = (
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
SCHEMA_VERSION = len(_MIGRATIONS)
_ID_ATTEMPTS = 5
_COLUMNS = "id, agent, servers, token_hash, created_at, expires_at, revoked_at"

TokenState = Literal["active", "revoked", "expired"]


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """What is known about a token, without its secret. Times are Unix seconds."""

    id: str
    agent: str
    servers: frozenset[str] | None
    created_at: float
    expires_at: float | None
    revoked_at: float | None

    def state_at(self, now: float) -> TokenState:
        """The token's state at Unix time `now`."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and now >= self.expires_at:
            return "expired"
        return "active"

    @property
    def state(self) -> TokenState:
        """`"active"`, `"revoked"` or `"expired"`, now."""
        return self.state_at(time.time())


def _hash(token: str) -> str:
    # The secret is 256 random bits, so a fast hash is safe: there is nothing to brute-force.
    return hashlib.sha256(token.encode()).hexdigest()


def _info(row: tuple[str, str, str | None, str, float, float | None, float | None]) -> TokenInfo:
    token_id, agent, servers, _, created_at, expires_at, revoked_at = row
    return TokenInfo(
        id=token_id,
        agent=agent,
        servers=None if servers is None else frozenset(json.loads(servers)),
        created_at=created_at,
        expires_at=expires_at,
        revoked_at=revoked_at,
    )


class TokenStore:
    """Agent tokens in a SQLite file (WAL), shared safely by the gateway and the CLI.

    `clock` returns Unix time; it decides expiry and paces the change checks.
    """

    def __init__(
        self,
        path: Path,
        *,
        clock: Callable[[], float] = time.time,
        refresh_interval: float = DEFAULT_REFRESH_INTERVAL,
    ) -> None:
        self._path = Path(path)
        self._clock = clock
        self._refresh_interval = refresh_interval
        self._lock = threading.Lock()
        self._path.parent.mkdir(parents=True, exist_ok=True)
        if not self._path.exists():
            os.close(os.open(self._path, os.O_CREAT | os.O_WRONLY, 0o600))
        self._db = self._connect()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._migrate()
        self._reader = self._connect()
        self._cache: dict[str, tuple[str, TokenInfo]] = {}
        self._data_version: int | None = None
        self._checked_at: float | None = None

    def _connect(self) -> sqlite3.Connection:
        return sqlite_schema.connect(self._path)

    def _migrate(self) -> None:
        with self._lock:
            sqlite_schema.migrate(self._db, _MIGRATIONS, what="token", path=self._path)

    def create(
        self,
        agent: str,
        servers: Iterable[str] | None = None,
        expires_in: float | None = None,
    ) -> tuple[TokenInfo, str]:
        """Issue a token for `agent`, limited to `servers` (None: all), valid `expires_in` seconds.

        Returns the token's info and its plaintext, which is not stored and cannot be recovered.
        """
        if not agent or not agent.strip():
            raise ValueError("agent name must be a non-empty string")
        if expires_in is not None and expires_in <= 0:
            raise ValueError("expires_in must be a positive number of seconds")
        server_set = None if servers is None else frozenset(servers)
        if server_set is not None and not all(isinstance(s, str) and s for s in server_set):
            raise ValueError("server names must be non-empty strings")
        now = self._clock()
        for attempt in range(_ID_ATTEMPTS):
            info = TokenInfo(
                id=secrets.token_hex(4),
                agent=agent,
                servers=server_set,
                created_at=now,
                expires_at=None if expires_in is None else now + expires_in,
                revoked_at=None,
            )
            token = f"{TOKEN_PREFIX}{info.id}_{secrets.token_urlsafe(32)}"
            try:
                self._insert(info, _hash(token))
            except sqlite3.IntegrityError:
                if attempt == _ID_ATTEMPTS - 1:
                    raise
                continue  # the 32-bit public id collided with an existing one
            return info, token
        raise AssertionError("unreachable")

    def _insert(self, info: TokenInfo, token_hash: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO tokens (id, agent, servers, token_hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    info.id,
                    info.agent,
                    None if info.servers is None else json.dumps(sorted(info.servers)),
                    token_hash,
                    info.created_at,
                    info.expires_at,
                ),
            )
            self._data_version = None

    def list(self) -> builtins.list[TokenInfo]:
        """Every token, revoked and expired ones included, oldest first."""
        with self._lock:
            rows = self._db.execute(f"SELECT {_COLUMNS} FROM tokens ORDER BY created_at, id").fetchall()
        return [_info(row) for row in rows]

    def revoke(self, token_id: str) -> bool:
        """Revoke the token with this id. False if there is no such token."""
        with self._lock:
            cursor = self._db.execute(
                "UPDATE tokens SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?", (self._clock(), token_id)
            )
            self._data_version = None
        return cursor.rowcount > 0

    def revoke_agent(self, agent: str) -> int:
        """Revoke every active token of `agent`; returns how many were revoked."""
        with self._lock:
            cursor = self._db.execute(
                "UPDATE tokens SET revoked_at = ? WHERE agent = ? AND revoked_at IS NULL", (self._clock(), agent)
            )
            self._data_version = None
        return cursor.rowcount

    def verify(self, token: str) -> Principal | None:
        """The principal a token stands for; None if malformed, unknown, revoked or expired."""
        match = _TOKEN_RE.fullmatch(token) if isinstance(token, str) else None
        if match is None:
            return None
        now = self._clock()
        with self._lock:
            self._refresh(now)
            entry = self._cache.get(match[1])
        if entry is None:
            return None
        token_hash, info = entry
        if not hmac.compare_digest(token_hash, _hash(token)) or info.state_at(now) != "active":
            return None
        return Principal(agent=info.agent, servers=info.servers, via="token", credential_id=info.id)

    def _refresh(self, now: float) -> None:
        """Reload the cache if the file changed; checks at most once per refresh interval."""
        if (
            self._data_version is not None
            and self._checked_at is not None
            and 0 <= now - self._checked_at < self._refresh_interval
        ):
            return
        self._checked_at = now
        version: int = self._reader.execute("PRAGMA data_version").fetchone()[0]
        if version == self._data_version:
            return
        rows = self._reader.execute(f"SELECT {_COLUMNS} FROM tokens WHERE revoked_at IS NULL").fetchall()
        self._cache = {row[0]: (row[3], _info(row)) for row in rows}
        self._data_version = version

    def close(self) -> None:
        """Close the database connections."""
        with self._lock:
            self._reader.close()
            self._db.close()

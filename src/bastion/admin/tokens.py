"""Admin credentials: `bsa_<id>_<secret>` bearer tokens with a role, stored as hashes in SQLite.

They live in their own file and table, apart from agent tokens, so an agent credential can
never act as an admin one. Roles: `viewer` reads, `approver` also decides approvals, `admin`
may do everything.
"""

from __future__ import annotations

import builtins
import enum
import hashlib
import hmac
import os
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ADMIN_TOKEN_PREFIX = "bsa_"
SCHEMA_VERSION = 1
_TOKEN_RE = re.compile(r"bsa_([0-9a-f]{8})_([A-Za-z0-9_-]{43})")
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS admin_tokens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL,
    revoked_at REAL
)
"""
_COLUMNS = "id, name, role, created_at, revoked_at"


class Role(enum.IntEnum):
    VIEWER = 1
    APPROVER = 2
    ADMIN = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Role:
        try:
            return cls[text.upper()]
        except KeyError:
            raise ValueError(f"unknown role {text!r}; use admin, approver or viewer") from None


@dataclass(frozen=True, slots=True)
class AdminIdentity:
    """Who holds an admin token: its id, the name decisions are recorded under, and the role."""

    id: str
    name: str
    role: Role
    created_at: float
    revoked_at: float | None

    def may(self, needed: Role) -> bool:
        return self.revoked_at is None and self.role >= needed


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _identity(row: tuple[str, str, str, float, float | None]) -> AdminIdentity:
    return AdminIdentity(row[0], row[1], Role.parse(row[2]), row[3], row[4])


class AdminTokenStore:
    """Admin tokens in `admin_tokens.db` (WAL), shared by the gateway and the CLI."""

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        self._path = Path(path)
        self._clock = clock
        self._lock = threading.Lock()
        self._path.parent.mkdir(parents=True, exist_ok=True)
        if not self._path.exists():
            os.close(os.open(self._path, os.O_CREAT | os.O_WRONLY, 0o600))
        self._db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.execute("PRAGMA journal_mode=WAL")
        with self._lock:
            version: int = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise RuntimeError(f"{self._path}: admin token schema {version} is newer than this Bastion")
            self._db.execute(_SCHEMA)
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def create(self, name: str, role: Role) -> tuple[AdminIdentity, str]:
        """Issue a token; returns its identity and the plaintext (shown once, never stored)."""
        if not _NAME_RE.fullmatch(name):
            raise ValueError("name must be 1-128 letters, digits, `.`, `@`, `-` or `_`")
        for _ in range(5):
            identity = AdminIdentity(secrets.token_hex(4), name, role, self._clock(), None)
            token = f"{ADMIN_TOKEN_PREFIX}{identity.id}_{secrets.token_urlsafe(32)}"
            try:
                with self._lock:
                    self._db.execute(
                        "INSERT INTO admin_tokens (id, name, role, token_hash, created_at) VALUES (?, ?, ?, ?, ?)",
                        (identity.id, name, role.label, _hash(token), identity.created_at),
                    )
            except sqlite3.IntegrityError:
                continue
            return identity, token
        raise RuntimeError("could not pick a unique admin token id")

    def list(self) -> builtins.list[AdminIdentity]:
        with self._lock:
            rows = self._db.execute(f"SELECT {_COLUMNS} FROM admin_tokens ORDER BY created_at, id").fetchall()
        return [_identity(row) for row in rows]

    def get(self, token_id: str) -> AdminIdentity | None:
        """The token with this id, revoked or not; None if there is none."""
        with self._lock:
            row = self._db.execute(f"SELECT {_COLUMNS} FROM admin_tokens WHERE id = ?", (token_id,)).fetchone()
        return _identity(row) if row is not None else None

    def revoke(self, token_id: str) -> bool:
        with self._lock:
            cursor = self._db.execute(
                "UPDATE admin_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (self._clock(), token_id),
            )
        return cursor.rowcount > 0

    def verify(self, token: str) -> AdminIdentity | None:
        """The holder of an active admin token; None if malformed, unknown or revoked."""
        match = _TOKEN_RE.fullmatch(token) if isinstance(token, str) else None
        if match is None:
            return None
        with self._lock:
            row = self._db.execute(
                f"SELECT {_COLUMNS}, token_hash FROM admin_tokens WHERE id = ?", (match[1],)
            ).fetchone()
        if row is None or not hmac.compare_digest(row[5], _hash(token)) or row[4] is not None:
            return None
        return _identity(row[:5])

    def close(self) -> None:
        with self._lock:
            self._db.close()

"""Admin credentials: `bsa_<id>_<secret>` bearer tokens with a role, stored as hashes.

They live in their own table (and SQLite file), apart from agent tokens, so an agent
credential can never act as an admin one. Roles: `viewer` reads, `approver` also decides
approvals, `admin` may do everything. Stores: `SqliteAdminTokenStore`
(`<data_dir>/admin_tokens.db`), `PostgresAdminTokenStore` (`database_url`). Both read the
database on every check (admin requests are few), so a revocation applies to the next request.
"""

from __future__ import annotations

import builtins
import enum
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Any, Protocol

ADMIN_TOKEN_PREFIX = "bsa_"
_TOKEN_RE = re.compile(r"bsa_([0-9a-f]{8})_([A-Za-z0-9_-]{43})")
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}")
COLUMNS = "id, name, role, created_at, revoked_at"
"""What `identity_of` decodes, in order."""


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


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def identity_of(row: tuple[Any, ...]) -> AdminIdentity:
    return AdminIdentity(row[0], row[1], Role.parse(row[2]), row[3], row[4])


# Statements both stores run (`?` placeholders; see bastion.state.postgres.placeholders).
INSERT = "INSERT INTO admin_tokens (id, name, role, token_hash, created_at) VALUES (?, ?, ?, ?, ?)"
SELECT_ALL = f"SELECT {COLUMNS} FROM admin_tokens ORDER BY created_at, id"
SELECT_BY_ID = f"SELECT {COLUMNS} FROM admin_tokens WHERE id = ?"
SELECT_WITH_HASH = f"SELECT {COLUMNS}, token_hash FROM admin_tokens WHERE id = ?"
REVOKE = "UPDATE admin_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL"


def insert_parameters(identity: AdminIdentity, token: str) -> tuple[Any, ...]:
    """The parameters of `INSERT` for a new admin token: only its hash is kept."""
    return (identity.id, identity.name, identity.role.label, token_hash(token), identity.created_at)


def new_admin_token(name: str, role: Role, now: float) -> tuple[AdminIdentity, str]:
    """A fresh token's identity and plaintext (not yet stored). Raises ValueError for a bad name."""
    if not _NAME_RE.fullmatch(name):
        raise ValueError("name must be 1-128 letters, digits, `.`, `@`, `-` or `_`")
    identity = AdminIdentity(secrets.token_hex(4), name, role, now, None)
    return identity, f"{ADMIN_TOKEN_PREFIX}{identity.id}_{secrets.token_urlsafe(32)}"


def admin_token_id(token: object) -> str | None:
    """The public id of a well-formed admin token, else None."""
    match = _TOKEN_RE.fullmatch(token) if isinstance(token, str) else None
    return None if match is None else match[1]


def holder_of(token: str, row: tuple[Any, ...] | None) -> AdminIdentity | None:
    """The identity of `row` (COLUMNS, then token_hash) if it is `token`'s and not revoked."""
    if row is None or not hmac.compare_digest(row[5], token_hash(token)) or row[4] is not None:
        return None
    return identity_of(row[:5])


class AdminTokenStore(Protocol):
    """Where admin tokens live, shared by the gateway (admin API) and `bastion admin token`."""

    def create(self, name: str, role: Role) -> tuple[AdminIdentity, str]:
        """Issue a token; returns its identity and the plaintext (shown once, never stored)."""
        ...

    def list(self) -> builtins.list[AdminIdentity]: ...

    def get(self, token_id: str) -> AdminIdentity | None:
        """The token with this id, revoked or not; None if there is none."""
        ...

    def revoke(self, token_id: str) -> bool: ...

    def verify(self, token: str) -> AdminIdentity | None:
        """The holder of an active admin token; None if malformed, unknown or revoked."""
        ...

    def close(self) -> None: ...

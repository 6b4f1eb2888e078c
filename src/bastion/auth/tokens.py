"""Agent bearer tokens: `bst_<id>_<secret>`, stored as hashes.

The plaintext token exists once, when `TokenStore.create` returns it; the store holds only
its SHA-256. `verify` is on the hot path (every HTTP request): both stores answer it from a
copy in memory, reloaded when another process (the `bastion` CLI, another replica) changed
the tokens, and remember the tokens they verified against that copy (`verified_tokens.py`).
Stores: `SqliteTokenStore` (`<data_dir>/tokens.db`), `PostgresTokenStore` (`database_url`).
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from bastion.model import Principal

TOKEN_PREFIX = "bst_"
"""Tries at a fresh 32-bit public id before giving up (a collision is rare; two in a row rarer)."""

_TOKEN_RE = re.compile(r"bst_([0-9a-f]{8})_([A-Za-z0-9_-]{43})")

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


class TokenStore(Protocol):
    """Where agent tokens live, shared by the gateway (which verifies) and the CLI (which issues)."""

    def create(
        self, agent: str, servers: Iterable[str] | None = None, expires_in: float | None = None
    ) -> tuple[TokenInfo, str]:
        """Issue a token for `agent`, limited to `servers` (None: all), valid `expires_in` seconds.

        Returns the token's info and its plaintext, which is not stored and cannot be recovered.
        """
        ...

    def list(self) -> builtins.list[TokenInfo]:
        """Every token, revoked and expired ones included, oldest first."""
        ...

    def revoke(self, token_id: str) -> bool:
        """Revoke the token with this id. False if there is no such token."""
        ...

    def revoke_agent(self, agent: str) -> int:
        """Revoke every active token of `agent`; returns how many were revoked."""
        ...

    def verify(self, token: str) -> Principal | None:
        """The principal a token stands for; None if malformed, unknown, revoked or expired."""
        ...

    def close(self) -> None: ...


def token_hash(token: str) -> str:
    """What a store keeps of a token."""
    # The secret is 256 random bits, so a fast hash is safe: there is nothing to brute-force.
    return hashlib.sha256(token.encode()).hexdigest()


def new_token(agent: str, servers: Iterable[str] | None, expires_in: float | None, now: float) -> tuple[TokenInfo, str]:
    """A fresh token's info and plaintext (not yet stored). Raises ValueError on bad input."""
    if not agent or not agent.strip():
        raise ValueError("agent name must be a non-empty string")
    if expires_in is not None and expires_in <= 0:
        raise ValueError("expires_in must be a positive number of seconds")
    server_set = None if servers is None else frozenset(servers)
    if server_set is not None and not all(isinstance(s, str) and s for s in server_set):
        raise ValueError("server names must be non-empty strings")
    info = TokenInfo(
        id=secrets.token_hex(4),
        agent=agent,
        servers=server_set,
        created_at=now,
        expires_at=None if expires_in is None else now + expires_in,
        revoked_at=None,
    )
    return info, f"{TOKEN_PREFIX}{info.id}_{secrets.token_urlsafe(32)}"


def token_id(token: object) -> str | None:
    """The public id of a well-formed token, else None."""
    match = _TOKEN_RE.fullmatch(token) if isinstance(token, str) else None
    return None if match is None else match[1]


def servers_json(servers: frozenset[str] | None) -> str | None:
    return None if servers is None else json.dumps(sorted(servers))


COLUMNS = "id, agent, servers, token_hash, created_at, expires_at, revoked_at"

# Statements both stores run (`?` placeholders; see bastion.state.postgres.placeholders).
INSERT = "INSERT INTO tokens (id, agent, servers, token_hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)"
SELECT_ACTIVE = f"SELECT {COLUMNS} FROM tokens WHERE revoked_at IS NULL"
SELECT_ALL = f"SELECT {COLUMNS} FROM tokens ORDER BY created_at, id"
REVOKE = "UPDATE tokens SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?"
REVOKE_AGENT = "UPDATE tokens SET revoked_at = ? WHERE agent = ? AND revoked_at IS NULL"


def insert_parameters(info: TokenInfo, token: str) -> tuple[Any, ...]:
    """The parameters of `INSERT` for a new token: only its hash is kept."""
    return (info.id, info.agent, servers_json(info.servers), token_hash(token), info.created_at, info.expires_at)


"""The columns `info_of` decodes, in order (both stores share the table's shape)."""


def info_of(row: tuple[Any, ...]) -> TokenInfo:
    token_id_, agent, servers, _, created_at, expires_at, revoked_at = row
    return TokenInfo(
        id=token_id_,
        agent=agent,
        servers=None if servers is None else frozenset(json.loads(servers)),
        created_at=created_at,
        expires_at=expires_at,
        revoked_at=revoked_at,
    )


ActiveTokens = dict[str, tuple[str, TokenInfo]]
"""Active tokens by public id: (hash, info), what `verify` reads."""


def active_tokens(rows: Iterable[tuple[Any, ...]]) -> ActiveTokens:
    return {row[0]: (row[3], info_of(row)) for row in rows}


def verified_info(token: str, active: ActiveTokens) -> TokenInfo | None:
    """The info of `token` among `active` tokens, its hash checked; None if it is not one of them."""
    public_id = token_id(token)
    entry = None if public_id is None else active.get(public_id)
    if entry is None:
        return None
    stored_hash, info = entry
    return info if hmac.compare_digest(stored_hash, token_hash(token)) else None


def principal_of(info: TokenInfo, now: float) -> Principal | None:
    """The principal of a verified token at Unix time `now`; None once it has expired or been revoked."""
    if info.state_at(now) != "active":
        return None
    return Principal(agent=info.agent, servers=info.servers, via="token", credential_id=info.id)

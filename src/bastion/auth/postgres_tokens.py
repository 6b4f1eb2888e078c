"""Agent tokens in the shared PostgreSQL database (`database_url`), for several gateway replicas.

`verify` reads a copy in memory. Every change (create, revoke) sends a notification in the
same transaction; each replica's listener marks its copy stale on it, so the next request
re-reads the table: a token revoked through any replica or the CLI stops working everywhere
as soon as the notification arrives (milliseconds). Should a notification be missed, the
copy is re-read at least every `max_age` seconds (default 5), and on every request while
the notification connection is down.
"""

from __future__ import annotations

import builtins
import threading
import time
from collections.abc import Callable, Hashable, Iterable

import psycopg

from bastion.auth import tokens
from bastion.auth.tokens import ActiveTokens, TokenInfo, active_tokens, info_of, new_token
from bastion.auth.verified_tokens import VerifiedTokens
from bastion.model import Principal
from bastion.state.fresh_ids import insert_with_fresh_id
from bastion.state.postgres import NotificationListener, Subscription, acquire
from bastion.state.postgres.placeholders import postgres
from bastion.state.reload_cache import ReloadCache

DEFAULT_MAX_AGE = 5.0
"""Seconds a replica trusts its copy without hearing of a change (the bound if a notification is lost)."""

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE tokens (
            id TEXT PRIMARY KEY,
            agent TEXT NOT NULL,
            servers TEXT,
            token_hash TEXT NOT NULL UNIQUE,
            created_at DOUBLE PRECISION NOT NULL,
            expires_at DOUBLE PRECISION,
            revoked_at DOUBLE PRECISION,
            last_used_at DOUBLE PRECISION)""",
        "CREATE INDEX tokens_agent ON tokens (agent)",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)


class PostgresTokenStore:
    """`TokenStore` on PostgreSQL. `clock` returns Unix time (expiry and the copy's age)."""

    def __init__(
        self,
        url: str,
        *,
        clock: Callable[[], float] = time.time,
        max_age: float = DEFAULT_MAX_AGE,
    ) -> None:
        self._shared = acquire(url)
        self._db = self._shared.database
        self._clock = clock
        self._lock = threading.Lock()
        self._verified = VerifiedTokens()
        self._channel = self._db.channel("tokens")
        self._generation = 0
        self._subscription: Subscription | None = None
        self._listener: NotificationListener
        try:
            self._db.migrate("tokens", MIGRATIONS)
        except BaseException:
            self._shared.release()
            raise
        self._cache: ReloadCache[ActiveTokens] = ReloadCache(self._load, self._version, empty={}, max_age=max_age)

    def _changed(self, payload: str = "") -> None:
        self._generation += 1  # only the listener thread writes it

    def _version(self) -> Hashable:
        if self._subscription is None:
            # Listen before the first read, so a change committed after it is never missed.
            self._listener = self._db.listener
            self._subscription = self._listener.subscribe(self._channel, self._changed, self._changed)
        return self._generation if self._listener.healthy else object()

    def _load(self) -> ActiveTokens:
        with self._db.pool.connection() as conn:
            return active_tokens(conn.execute(postgres(tokens.SELECT_ACTIVE)).fetchall())

    def _write(self, statement: str, params: tuple[object, ...]) -> int:
        """Run one change and announce it, in one transaction; returns the rows changed."""
        with self._db.pool.connection() as conn, conn.transaction():
            cursor = conn.execute(postgres(statement), params)
            conn.execute("SELECT pg_notify(%s, '')", (self._channel,))
            changed = cursor.rowcount
        with self._lock:
            self._cache.invalidate()
        return changed

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
            psycopg.errors.UniqueViolation,
        )

    def list(self) -> builtins.list[TokenInfo]:
        with self._db.pool.connection() as conn:
            rows = conn.execute(postgres(tokens.SELECT_ALL)).fetchall()
        return [info_of(row) for row in rows]

    def revoke(self, token_id: str) -> bool:
        return self._write(tokens.REVOKE, (self._clock(), token_id)) > 0

    def revoke_agent(self, agent: str) -> int:
        return self._write(tokens.REVOKE_AGENT, (self._clock(), agent))

    def verify(self, token: str) -> Principal | None:
        now = self._clock()
        with self._lock:
            active = self._cache.get(now)
        return self._verified.principal(token, active, now)

    def close(self) -> None:
        """Stop listening and drop this store's share of the connection pool."""
        if self._subscription is not None:
            self._db.listener.unsubscribe(self._subscription)
        self._shared.release()

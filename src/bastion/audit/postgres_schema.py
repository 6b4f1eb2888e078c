"""The PostgreSQL audit schema and its migrations (`audit_schema.version`), applied one replica at a time.

Tables are created unqualified, in the connection's `search_path` (by default the `public`
schema; `?options=-csearch_path%3Dname` in the URL picks another). The advisory lock is per
schema, so replicas starting together migrate once, and logs in other schemas do not wait.
"""

from __future__ import annotations

from typing import Any

import psycopg

from bastion.audit.chain import GENESIS_HASH
from bastion.audit.store import AuditStoreError

COLUMNS = ("seq", "time", "type", "agent", "server", "correlation_id", "tool", "verdict", "rule", "data", "hash")
_MIGRATION_LOCK = "SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.bastion_audit_schema'))"

_V1 = (
    """CREATE TABLE events (
        seq BIGINT PRIMARY KEY, time DOUBLE PRECISION NOT NULL, type TEXT NOT NULL,
        agent TEXT, server TEXT, correlation_id TEXT, tool TEXT, verdict TEXT, rule TEXT,
        data TEXT NOT NULL, hash TEXT NOT NULL,
        tsv tsvector GENERATED ALWAYS AS
            (to_tsvector('simple'::regconfig, coalesce(tool, '') || ' ' || data)) STORED)""",
    "CREATE INDEX events_time ON events (time)",
    *(
        f"CREATE INDEX events_{column} ON events ({column}, seq)"
        for column in ("agent", "server", "tool", "type", "correlation_id", "verdict", "rule")
    ),
    "CREATE INDEX events_tsv ON events USING gin (tsv)",
    "CREATE TABLE audit_head (id INTEGER PRIMARY KEY CHECK (id = 1), seq BIGINT NOT NULL, hash TEXT NOT NULL)",
    f"INSERT INTO audit_head VALUES (1, 0, '{GENESIS_HASH}')",
    """CREATE TABLE audit_checkpoints (
        seq BIGINT PRIMARY KEY, hash TEXT NOT NULL, time DOUBLE PRECISION NOT NULL, removed BIGINT NOT NULL)""",
    "CREATE TABLE audit_health (id INTEGER PRIMARY KEY CHECK (id = 1), checked_at DOUBLE PRECISION NOT NULL)",
)
_V2 = ("ALTER TABLE audit_head ADD COLUMN mac TEXT",)
"""The chain head carries its signature (see `anchor.py`)."""
MIGRATIONS: tuple[tuple[str, ...], ...] = (_V1, _V2)
"""`MIGRATIONS[n]` brings a database from schema version n to n + 1 (`audit_schema.version`)."""
SCHEMA_VERSION = len(MIGRATIONS)


async def migrate(conn: psycopg.AsyncConnection[Any], description: str) -> None:
    """Create or upgrade the schema in `conn`'s search path, one replica at a time (an advisory lock)."""
    async with conn.transaction():
        await conn.execute(_MIGRATION_LOCK)
        await conn.execute("CREATE TABLE IF NOT EXISTS audit_schema (version INTEGER NOT NULL)")
        found = await (await conn.execute("SELECT max(version) FROM audit_schema")).fetchone()
        version = int(found[0]) if found is not None and found[0] is not None else 0
        if version > SCHEMA_VERSION:
            raise AuditStoreError(
                f"{description} has audit schema v{version}; this Bastion knows up to v{SCHEMA_VERSION}"
            )
        for statements in MIGRATIONS[version:]:
            for statement in statements:
                await conn.execute(statement.encode())
        if version < SCHEMA_VERSION:
            await conn.execute("DELETE FROM audit_schema")
            await conn.execute("INSERT INTO audit_schema VALUES (%s)", (SCHEMA_VERSION,))

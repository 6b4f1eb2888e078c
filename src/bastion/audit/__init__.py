"""The audit log: typed, hash-chained events, recorded before a call is forwarded and completed after."""

from __future__ import annotations

from pathlib import Path

from bastion.audit.anchor import AuditAnchor
from bastion.audit.redact import PayloadPolicy
from bastion.audit.retention import Retention
from bastion.audit.sqlite_store import SqliteAuditStore
from bastion.audit.store import AuditReader, AuditStore, AuditStoreError, Durability

__all__ = ["AuditReader", "AuditStore", "AuditStoreError", "Durability", "SqliteAuditStore", "open_audit_store"]

AUDIT_DB_NAME = "audit.db"


def open_audit_store(
    data_dir: Path,
    *,
    url: str | None = None,
    policy: PayloadPolicy | None = None,
    retention: Retention | None = None,
    durability: Durability = "power",
    anchor: AuditAnchor | None = None,
) -> AuditStore:
    """The audit store `url` names (`postgresql://...`, `sqlite:///path`), else `data_dir / "audit.db"`.

    Not yet opened: `await store.open()` to write; reading (search, export) needs no opening.
    `durability` says what a durable write survives (see `Durability`). With `anchor`, every
    head the store commits is signed, and the log is checked against it on opening (`anchor.py`).
    """
    if url is not None and url.startswith(("postgresql://", "postgres://")):
        try:
            from bastion.audit.postgres_store import PostgresAuditStore
        except ImportError as exc:
            raise AuditStoreError(
                f"a PostgreSQL audit store needs psycopg: pip install 'bastion-mcp[postgres]' ({exc})"
            ) from exc

        return PostgresAuditStore(url, policy, retention, durability=durability, anchor=anchor)
    path = Path(url.removeprefix("sqlite://")) if url is not None else data_dir / AUDIT_DB_NAME
    return SqliteAuditStore(path, policy, retention, durability=durability, anchor=anchor)

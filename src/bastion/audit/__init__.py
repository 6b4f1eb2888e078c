"""The audit log: every request, recorded before it is forwarded and completed after."""

from __future__ import annotations

from pathlib import Path

from bastion.audit.sqlite_store import SqliteAuditStore
from bastion.audit.store import AuditStore, AuditStoreError

__all__ = ["AuditStore", "AuditStoreError", "SqliteAuditStore", "open_audit_store"]

AUDIT_DB_NAME = "audit.db"


def open_audit_store(data_dir: Path) -> SqliteAuditStore:
    """The embedded audit store at `data_dir / "audit.db"`. Not yet opened: `await store.open()`."""
    return SqliteAuditStore(data_dir / AUDIT_DB_NAME)

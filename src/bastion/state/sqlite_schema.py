"""Opening and migrating the small SQLite files Bastion keeps beside its audit log (tokens, approvals, pins).

Each file carries its schema version in `PRAGMA user_version`; `migrations[n]` brings it
from version n to n + 1. A file newer than this Bastion is refused, never downgraded.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path

BUSY_TIMEOUT_MS = 5000


def connect(path: Path) -> sqlite3.Connection:
    """An autocommit connection usable from any thread, waiting up to 5 s for another writer."""
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    return db


def open_private(path: Path) -> sqlite3.Connection:
    """`connect` to `path` in WAL mode, creating the file (and its folder) readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    db = connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    return db


def data_version(db: sqlite3.Connection) -> int:
    """`PRAGMA data_version`: changes whenever another connection commits to the file."""
    version: int = db.execute("PRAGMA data_version").fetchone()[0]
    return version


def apply_migrations(db: sqlite3.Connection, migrations: Sequence[str], *, what: str, path: Path) -> None:
    """Bring the schema up to `len(migrations)`, inside the caller's transaction."""
    latest = len(migrations)
    version: int = db.execute("PRAGMA user_version").fetchone()[0]
    if version > latest:
        raise RuntimeError(
            f"{path}: {what} schema version {version} is newer than this Bastion understands ({latest}); "
            "upgrade Bastion"
        )
    for number in range(version, latest):
        for statement in migrations[number].split(";"):
            if statement.strip():
                db.execute(statement)
    db.execute(f"PRAGMA user_version={latest}")


def migrate(db: sqlite3.Connection, migrations: Sequence[str], *, what: str, path: Path) -> None:
    """`apply_migrations` in its own immediate transaction (so two processes never migrate at once)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        apply_migrations(db, migrations, what=what, path=path)
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise

"""Files of the audit log that only their owner may read: the SQLite log, its key, its head."""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

logger = logging.getLogger(__name__)


def make_private(path: Path) -> None:
    """Create `path` readable and writable by its owner only, or take group and other access
    away from it (and its WAL and shared-memory files) if an older Bastion made it wider.
    SQLite creates the WAL and shared-memory files with the mode of the database file."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, 0o600))
    for each in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            if each.stat().st_mode & 0o077:
                each.chmod(0o600)
        except FileNotFoundError:
            pass
        except PermissionError as exc:  # not ours to change: say so, and go on
            logger.warning("audit log file %s is readable by others and cannot be made private: %s", each, exc)


def write_private(path: Path, text: str, *, exclusive: bool = False) -> None:
    """Write `text` to `path` (mode 0600) and fsync it. Replaces the file atomically (a temporary
    file renamed over it), or, with `exclusive`, creates it and raises `FileExistsError` if it exists."""
    path.parent.mkdir(parents=True, exist_ok=True)
    target = path if exclusive else path.with_name(f".{path.name}.{os.getpid()}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | (os.O_EXCL if exclusive else os.O_TRUNC)
    fd = os.open(target, flags, 0o600)
    try:
        os.write(fd, text.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    if not exclusive:
        os.replace(target, path)

"""Who may read `/readyz` in full: an admin token, or the holder of this gateway's status key.

A stranger (an unauthenticated probe, a load balancer, a curious neighbour on the same
host) learns only `{"ready": true|false}`. Server names, limits and last exits go to an
admin token, or to the bearer of the status key: a random secret the serving gateway
writes to `data_dir/status.key`, readable by its owner only, so `bastion servers` run by
the operator can show them without an admin token.
"""

from __future__ import annotations

import contextlib
import hmac
import os
import secrets
from pathlib import Path

from bastion.config import BastionConfig


def status_key_file(config: BastionConfig) -> Path:
    """Where a serving gateway keeps its status key."""
    return config.data_dir / "status.key"


def write_status_key(path: Path) -> str:
    """A fresh key, written to `path` with mode 0600 (an old file is replaced, never reused)."""
    key = secrets.token_urlsafe(32)
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(key + "\n")
    return key


def read_status_key(path: Path) -> str | None:
    """The key a running gateway wrote, or None when there is none (or it cannot be read)."""
    with contextlib.suppress(OSError):
        return path.read_text(encoding="utf-8").strip() or None
    return None


def bearer_of(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer ...` header."""
    if header is None or header[:7].lower() != "bearer ":
        return None
    return header[7:].strip() or None


def is_status_key(token: str, key: str | None) -> bool:
    return key is not None and hmac.compare_digest(token.encode(), key.encode())

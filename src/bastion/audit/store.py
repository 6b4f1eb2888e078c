"""The audit store interface. Backends (SQLite now, PostgreSQL later) implement `AuditStore`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

from bastion.model import CallFinished, CallStarted


class AuditStoreError(Exception):
    """The store could not record an event. Callers fail closed on it."""


class AuditStore(Protocol):
    """Where every request is recorded.

    `start` with `durable=True` returns only once the record is committed to disk; the
    gateway calls it so before forwarding a `tools/call`. Other writes are group-committed
    and need not wait for the disk. Every method raises `AuditStoreError` when the store
    cannot write.
    """

    async def open(self) -> None: ...

    async def close(self) -> None:
        """Flush everything queued, then release the store."""

    async def start(self, event: CallStarted, *, durable: bool) -> None: ...

    async def finish(self, event: CallFinished) -> None: ...

    async def check_writable(self) -> bool:
        """Whether a write round-trips now (for `/readyz`)."""

    def export(self) -> Iterator[dict[str, Any]]:
        """Every record, oldest first, as plain JSON-ready dicts (one per request)."""

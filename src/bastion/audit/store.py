"""The audit store interface. Backends (SQLite, PostgreSQL) implement `AuditStore`.

Recording an event, from any room of Bastion::

    await store.record(event)              # durable: returns once committed (write-ahead)
    await store.record(event, durable=False)  # queued for the next group commit
    store.record_nowait(event)             # the same, from sync code or another thread

Every call raises `AuditStoreError` when the store cannot take the event (closed, or the
commit failed); callers fail closed on it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    import asyncio

    from bastion.audit.chain import ChainedRow, Checkpoint
    from bastion.audit.events import AuditEvent
    from bastion.audit.head import SignedHead
    from bastion.audit.query import EventQuery


Durability = Literal["power", "process"]
"""What a durable write survives once `record` returns: `power`, a power loss or OS crash
(the commit is fsynced); `process`, a crash or kill of Bastion (the commit is handed to the
operating system, which writes it out shortly after)."""


class AuditStoreError(Exception):
    """The store could not record (or read) an event. Callers fail closed on it."""


class AuditReader(Protocol):
    """Read access to a log: what search, export and verify are built on. Thread-safe, sync."""

    @property
    def description(self) -> str:
        """Where the log is (a path, or a URL without its password)."""

    def rows(
        self, query: EventQuery, *, newest_first: bool, cursor: int | None = None, limit: int | None = None
    ) -> Iterator[ChainedRow]:
        """Matching events, streamed. `cursor` is an exclusive sequence-number bound in the
        direction of travel (below it when `newest_first`, above it otherwise)."""

    def count(self, query: EventQuery) -> int:
        """How many events match."""

    def chain_ends(self) -> tuple[Checkpoint | None, Checkpoint | None]:
        """The latest retention checkpoint (None: the log starts at 1) and the recorded head."""

    def signed_head(self) -> SignedHead | None:
        """The recorded head with its signature (`mac` empty when unsigned; see `anchor.py`)."""


class AuditStore(AuditReader, Protocol):
    """Where every event is recorded, group-committed behind one writer per process.

    `record` with `durable=True` returns only once the event is committed; the gateway
    records a `tools/call` so before forwarding it.
    """

    async def open(self) -> None: ...

    async def close(self) -> None:
        """Commit everything queued, then release the store."""

    async def record(self, event: AuditEvent, *, durable: bool = True, alone: bool = False) -> None:
        """`alone`: the caller has no other request in flight, so a durable commit may hold its
        thread rather than be handed to the writer and back (the SQLite store does so)."""

    async def record_ahead(self, event: AuditEvent, *, alone: bool = False) -> asyncio.Future[None] | None:
        """A durable `record` that may return once `event` is committed, before it is on disk:
        then with a future that resolves once it is there, or fails with `AuditStoreError`
        (the SQLite store under `power`, `alone`, where io_uring syncs it: `disk_sync.py`). The
        caller does what needs no disk meanwhile, and awaits the future before anything the
        record must precede (forwarding the call). None: on disk already."""

    def record_nowait(self, event: AuditEvent) -> None: ...

    async def flush(self) -> None:
        """Wait until everything queued so far is committed; raise if any of it failed."""

    async def prune_now(self) -> None:
        """Apply the retention settings now."""

    async def check_writable(self) -> bool:
        """Whether a write round-trips now (for `/readyz`)."""

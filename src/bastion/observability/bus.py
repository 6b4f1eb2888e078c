"""The event bus: every audit event recorded is also handed to the subscribers.

`ObservedAuditStore` wraps the gateway's audit store. Each event that any room records
(calls, verdicts, approvals, egress, server lifecycle, ...) reaches the store as before,
and each subscriber sees it right after the store took it. Subscribers only observe: one
that raises is logged and skipped, never failing the record (the audit log is the record
of truth; metrics and traces are not allowed to refuse a call).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Protocol

from bastion.audit.store import AuditStore

if TYPE_CHECKING:
    from bastion.audit.chain import ChainedRow, Checkpoint
    from bastion.audit.events import AuditEvent
    from bastion.audit.head import SignedHead
    from bastion.audit.query import EventQuery

logger = logging.getLogger(__name__)


class EventSubscriber(Protocol):
    """Sees every event the audit store took, on the thread that recorded it."""

    def observe(self, event: AuditEvent) -> None: ...

    def observe_write(self, seconds: float) -> None:
        """How long a durable (write-ahead) record took to commit."""


class ObservedAuditStore:
    """An `AuditStore` that publishes what it records to `subscribers` (see the module docstring)."""

    def __init__(self, store: AuditStore, subscribers: Sequence[EventSubscriber]) -> None:
        self.inner = store
        self.subscribers = tuple(subscribers)

    def _publish(self, event: AuditEvent) -> None:
        for subscriber in self.subscribers:
            try:
                subscriber.observe(event)
            except Exception:
                logger.exception("event subscriber %s failed on %s", type(subscriber).__name__, event.type)

    @property
    def description(self) -> str:
        return self.inner.description

    def rows(
        self, query: EventQuery, *, newest_first: bool, cursor: int | None = None, limit: int | None = None
    ) -> Iterator[ChainedRow]:
        return self.inner.rows(query, newest_first=newest_first, cursor=cursor, limit=limit)

    def count(self, query: EventQuery) -> int:
        return self.inner.count(query)

    def chain_ends(self) -> tuple[Checkpoint | None, Checkpoint | None]:
        return self.inner.chain_ends()

    def signed_head(self) -> SignedHead | None:
        return self.inner.signed_head()

    async def open(self) -> None:
        await self.inner.open()

    async def close(self) -> None:
        await self.inner.close()

    async def record(self, event: AuditEvent, *, durable: bool = True) -> None:
        began = time.perf_counter()
        await self.inner.record(event, durable=durable)
        if durable:
            elapsed = time.perf_counter() - began
            for subscriber in self.subscribers:
                try:
                    subscriber.observe_write(elapsed)
                except Exception:
                    logger.exception("event subscriber %s failed on a write timing", type(subscriber).__name__)
        self._publish(event)

    def record_nowait(self, event: AuditEvent) -> None:
        self.inner.record_nowait(event)
        self._publish(event)

    async def flush(self) -> None:
        await self.inner.flush()

    async def prune_now(self) -> None:
        await self.inner.prune_now()

    async def check_writable(self) -> bool:
        return await self.inner.check_writable()

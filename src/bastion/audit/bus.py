"""The event bus: every room reports what happened here, as a typed audit event.

`EventBus` stands in front of the gateway's audit store. The audit writer is its first
subscriber: each event is recorded (group-committed; `record` waits for a durable commit
when asked), then handed to every other subscriber (alerts, metrics) right after the store
took it. Rooms that only report, and must never wait or fail for it (the approval gate,
tool pinning, the runtime, rate limits, result checks, refusals), call `emit`: when the
store cannot take the event, the failure is logged and told to the subscribers
(`store_failing`, the `audit_store_failing` alert), and the event still reaches those that
`observes_unrecorded` (alerts).

Subscribers only observe: one that raises is logged and skipped, never failing a record
or a call (the audit log is the record of truth; metrics and alerts may not refuse a call).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Protocol

from bastion.audit.store import AuditStore, AuditStoreError

if TYPE_CHECKING:
    import asyncio

    from bastion.audit.chain import ChainedRow, Checkpoint
    from bastion.audit.events import AuditEvent
    from bastion.audit.head import SignedHead
    from bastion.audit.query import EventQuery

logger = logging.getLogger(__name__)


class EventSink(Protocol):
    """Where a room reports an event. `emit` never blocks and never raises."""

    def emit(self, event: AuditEvent) -> None: ...


class EventSubscriber(Protocol):
    """Sees every event the bus carries, on the thread that reported it.

    An event the store could not take (`emit` only) reaches the subscribers that say
    `observes_unrecorded` (alerts: a blocked egress attempt is news even then), not the
    others (metrics count what the log holds).
    """

    @property
    def observes_unrecorded(self) -> bool: ...

    def observe(self, event: AuditEvent) -> None: ...

    def observe_write(self, seconds: float) -> None:
        """How long a durable (write-ahead) record took to commit."""

    def store_failing(self, where: str) -> None:
        """The audit store `where` could not take an event (or a health write)."""


class EventBus:
    """An `AuditStore` that publishes what it records to its subscribers, and the `EventSink` of every room."""

    def __init__(self, store: AuditStore, subscribers: Sequence[EventSubscriber] = ()) -> None:
        self.inner = store
        self.subscribers: tuple[EventSubscriber, ...] = tuple(subscribers)

    def subscribe(self, subscriber: EventSubscriber) -> None:
        self.subscribers += (subscriber,)

    def emit(self, event: AuditEvent) -> None:
        """Queue `event` for the audit log (next group commit) and hand it to the subscribers."""
        try:
            self.inner.record_nowait(event)
        except AuditStoreError as exc:
            logger.error("audit store cannot record %s: %s", event.type, exc)
            self.store_failed(exc)
            self._publish(event, unrecorded=True)
        else:
            self._publish(event)

    def store_failed(self, error: BaseException | None = None) -> None:
        """Tell the subscribers the store cannot write (`error` is not passed on: only where, so a
        run of failures is one alert)."""
        where = self.inner.description
        for subscriber in self.subscribers:
            try:
                subscriber.store_failing(where)
            except Exception:
                logger.exception("event subscriber %s failed on a store failure", type(subscriber).__name__)

    def _publish(self, event: AuditEvent, *, unrecorded: bool = False) -> None:
        for subscriber in self.subscribers:
            if unrecorded and not subscriber.observes_unrecorded:
                continue
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

    async def record(self, event: AuditEvent, *, durable: bool = True, alone: bool = False) -> None:
        began = time.perf_counter()
        await self.inner.record(event, durable=durable, alone=alone)
        if durable:
            self._observe_write(time.perf_counter() - began)
        self._publish(event)

    def _observe_write(self, elapsed: float) -> None:
        for subscriber in self.subscribers:
            try:
                subscriber.observe_write(elapsed)
            except Exception:
                logger.exception("event subscriber %s failed on a write timing", type(subscriber).__name__)

    async def record_ahead(self, event: AuditEvent, *, alone: bool = False) -> asyncio.Future[None] | None:
        began = time.perf_counter()
        on_disk = await self.inner.record_ahead(event, alone=alone)
        self._observe_write(time.perf_counter() - began)
        self._publish(event)
        return on_disk

    def record_nowait(self, event: AuditEvent) -> None:
        self.inner.record_nowait(event)
        self._publish(event)

    async def flush(self) -> None:
        await self.inner.flush()

    async def prune_now(self) -> None:
        await self.inner.prune_now()

    async def check_writable(self) -> bool:
        return await self.inner.check_writable()

"""Recording audit events from CLI commands (token created, token revoked), durably, before reporting success."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import anyio

from bastion.audit.events import AuditEvent
from bastion.audit.store import AuditStoreError
from bastion.auth.token_requests import token_created
from bastion.config import BastionConfig
from bastion.gateway.gateway import open_audit

__all__ = ["AuditNotWritable", "audited", "record_events", "token_created"]


def record_events(config: BastionConfig, *events: AuditEvent) -> None:
    """Commit `events` to the configured audit store; raises `AuditStoreError` if it cannot."""

    async def write() -> None:
        store = open_audit(config)
        await store.open()
        try:
            for event in events:
                await store.record(event, durable=False)
            await store.flush()
        finally:
            await store.close()

    anyio.run(write)


T = TypeVar("T")


class AuditNotWritable(AuditStoreError):
    """The audit store could not be opened or written before the action: nothing was done."""


def audited(
    config: BastionConfig, action: Callable[[], Awaitable[T]], events_of: Callable[[T], Sequence[AuditEvent]]
) -> T:
    """Run `action` only once the audit store is known to be writable, then commit its events.

    Order: open the store and round-trip a health write first (`AuditNotWritable`: the action
    never ran), then act, then commit `events_of(result)` durably. So the log never holds a
    decision that was not made; if the store dies in between, `AuditStoreError` says the
    action was done but not recorded.
    """

    async def run() -> T:
        store = open_audit(config)
        try:
            await store.open()
        except AuditStoreError as exc:
            raise AuditNotWritable(str(exc)) from exc
        try:
            if not await store.check_writable():
                raise AuditNotWritable(f"audit store {store.description} does not accept writes")
            result = await action()
            for event in events_of(result):
                await store.record(event, durable=False)
            await store.flush()
            return result
        finally:
            await store.close()

    return anyio.run(run)

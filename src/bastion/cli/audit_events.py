"""Recording audit events from CLI commands (token created, token revoked), durably, before reporting success."""

from __future__ import annotations

import anyio

from bastion.audit.events import AuditEvent, TokenCreated
from bastion.config import BastionConfig
from bastion.gateway.gateway import open_audit
from bastion.gateway.tokens import TokenInfo


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


def token_created(info: TokenInfo) -> TokenCreated:
    """The `token.created` event for `info` (never the secret)."""
    return TokenCreated(
        time=info.created_at,
        agent=info.agent,
        token_id=info.id,
        servers=tuple(sorted(info.servers)) if info.servers is not None else None,
        expires_at=info.expires_at,
    )

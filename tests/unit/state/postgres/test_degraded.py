"""PostgreSQL stores when notifications cannot be relied on: they fall back to reading the database."""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import pytest

from bastion.approvals.model import ApprovalState
from bastion.approvals.postgres_store import PostgresApprovalStore
from bastion.auth.postgres_tokens import PostgresTokenStore
from bastion.state.postgres import acquire
from tests.unit.audit.postgres import postgres_schema


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def url() -> Iterator[str]:
    with postgres_schema() as schema_url:
        yield schema_url


def elsewhere(url: str) -> str:
    """The same database under another URL: its own pool and listener, like another process."""
    return f"{url}&application_name=elsewhere"


def test_without_a_listener_every_token_check_reads_the_database(url: str) -> None:
    gateway, cli = PostgresTokenStore(url), PostgresTokenStore(elsewhere(url))
    try:
        info, token = cli.create("bot")
        assert gateway.verify(token) is not None  # copy loaded, listener up
        shared = acquire(url)
        shared.database.listener.close()  # the gateway's notification connection is gone
        assert not shared.database.listener.healthy
        shared.release()
        cli.revoke(info.id)  # its notification reaches nobody in the gateway
        assert gateway.verify(token) is None  # read again, since nothing would say it changed
    finally:
        cli.close()
        gateway.close()


@pytest.mark.anyio
async def test_a_waiter_that_misses_the_notification_is_released_by_the_fallback_read(url: str) -> None:
    gateway = PostgresApprovalStore(url, fallback_poll=0.05)
    cli = PostgresApprovalStore(elsewhere(url))
    shared = acquire(url)
    try:
        approval = gateway.create(
            agent="bot", server="db", tool="q", arguments={}, rule="r", reason="x", expire_after=60
        )
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                result = []

                async def wait() -> None:
                    result.append(await gateway.wait_for_decision(approval.id, 30))

                tg.start_soon(wait)
                await anyio.to_thread.run_sync(shared.database.listener.close)  # notifications lost
                cli.decide(approval.id, approve=True, decided_by="cli:alice")
        assert result[0].state is ApprovalState.APPROVED
    finally:
        shared.release()
        cli.close()
        gateway.close()


def test_readiness_names_the_state_of_the_shared_database(url: str) -> None:
    from bastion.state.postgres.health import shared_state_health

    store = PostgresTokenStore(url)
    try:
        assert shared_state_health(url) == "connected"
        store.verify("bst_00000000_" + "A" * 43)  # now listening
        assert shared_state_health(url) == "connected"
        shared = acquire(url)
        shared.database.listener.close()
        assert shared_state_health(url) == "reconnecting"
        shared.release()
    finally:
        store.close()
    assert shared_state_health("postgresql://u@127.0.0.1:9/db?connect_timeout=2") == "unreachable"

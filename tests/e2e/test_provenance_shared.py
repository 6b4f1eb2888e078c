"""Provenance across replicas and sessions, end to end: real gateways, a real stdio MCP server whose
content an attacker wrote (tests/e2e/servers/poisoned_server.py), real agent clients, a real Redis.

- two gateways sharing one Redis (`limits.storage`, the one shared-state setting for Redis): the
  IBAN a poisoned result read through replica A planted is held on a call through replica B;
- memory per session and per agent: with `scope: session` another session of the same agent is
  not held, with the default (`both`) it is; a stateless 2026-era call has no session and is
  checked against its agent's memory;
- Redis going away: a call that must be checked is denied, a result whose values must be
  remembered is withheld (fail closed), an ordinary call still passes.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.client.sse import sse_client

from bastion.audit.chain import decode_row
from bastion.audit.query import EventQuery
from bastion.config import load_config
from bastion.gateway.gateway import Gateway
from tests.e2e.conftest import SERVERS_DIR, write_config
from tests.e2e.inprocess import http_client, serving
from tests.e2e.redis_server import private_redis
from tests.e2e.servers.poisoned_server import ATTACKER_IBAN, USER_IBAN

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

SERVER = {"command": sys.executable, "args": [str(SERVERS_DIR / "poisoned_server.py")]}
ALLOW_PAYMENTS = {
    "rules": [{"name": "pay", "match": {"tool": "send_money"}, "action": "allow", "skip_catalogue": "comm.*"}]
}
FLAGGED_EVENTS = EventQuery(types=("result.flagged",))
HELD = "first appeared in a result of mail.read_inbox flagged as injection"


def text_of(result: Any) -> str:
    return "".join(getattr(part, "text", "") for part in result.content)


def gateway_for(folder: Path, *, redis: str | None = None, scope: str | None = None) -> Gateway:
    extra: dict[str, Any] = {"limits": {"storage": redis}} if redis is not None else {}
    results = {"provenance": {"scope": scope}} if scope is not None else {}
    path = write_config(
        folder, {"mail": SERVER}, results=results, approvals={"wait": 0}, policy=ALLOW_PAYMENTS, **extra
    )
    return Gateway(load_config(path))


def token_for(gateway: Gateway, agent: str = "assistant") -> str:
    assert gateway.tokens is not None
    return gateway.tokens.create(agent)[1]


async def test_a_value_planted_through_one_replica_is_held_on_another(tmp_path: Path) -> None:
    with private_redis(tmp_path / "redis") as redis:
        first = gateway_for(tmp_path / "a", redis=redis.url)
        second = gateway_for(tmp_path / "b", redis=redis.url)
        with anyio.fail_after(90):
            async with AsyncExitStack() as stack:
                await stack.enter_async_context(serving(first))
                await stack.enter_async_context(serving(second))
                on_a = await stack.enter_async_context(http_client(first, "mail", token_for(first)))
                on_b = await stack.enter_async_context(http_client(second, "mail", token_for(second)))
                own = await on_b.call_tool("send_money", {"recipient": USER_IBAN, "amount": 10})
                poisoned = await on_a.call_tool("read_inbox", {"folder": "inbox"})
                attack = await on_b.call_tool("send_money", {"recipient": ATTACKER_IBAN, "amount": 100})
                again = await on_b.call_tool("send_money", {"recipient": USER_IBAN, "amount": 20})
                await first.audit.flush()
                [flagged] = [decode_row(row) for row in first.audit.rows(FLAGGED_EVENTS, newest_first=False)]
    assert ATTACKER_IBAN in text_of(poisoned)
    assert own.is_error is False, "the user's own IBAN, written first, is trusted"
    assert again.is_error is False, "and stays so after the poisoned result"
    assert attack.is_error is True
    assert HELD in text_of(attack), text_of(attack)
    assert "queued for human review" in text_of(attack)
    assert f"(call {flagged.correlation_id})" in text_of(attack), "replica B names the result replica A read"


@asynccontextmanager
async def client_for(gateway: Gateway, token: str, front: str) -> AsyncIterator[Client]:
    """A real SDK client over Streamable HTTP (a session named by `Mcp-Session-Id`) or legacy SSE."""
    if front == "http":
        async with http_client(gateway, "mail", token) as client:
            yield client
    else:
        url = f"{gateway.base_url}/servers/mail/sse"
        async with Client(sse_client(url, headers={"Authorization": f"Bearer {token}"}), mode="legacy") as client:
            yield client


@pytest.mark.parametrize("front", ["http", "sse"])
async def test_memory_is_kept_per_session_and_per_agent(tmp_path: Path, front: str) -> None:
    outcomes: dict[str, bool] = {}
    for scope in ("session", "both"):
        gateway = gateway_for(tmp_path / scope, scope=scope)
        with anyio.fail_after(90):
            async with serving(gateway):
                token = token_for(gateway)
                async with client_for(gateway, token, front) as reader, client_for(gateway, token, front) as other:
                    await reader.call_tool("read_inbox", {"folder": "inbox"})
                    elsewhere = await other.call_tool("send_money", {"recipient": ATTACKER_IBAN, "amount": 1})
                    same = await reader.call_tool("send_money", {"recipient": ATTACKER_IBAN, "amount": 2})
        outcomes[f"{scope}: another session"] = elsewhere.is_error is True and HELD in text_of(elsewhere)
        outcomes[f"{scope}: the same session"] = same.is_error is True and HELD in text_of(same)
    assert outcomes == {
        "session: another session": False,
        "session: the same session": True,
        "both: another session": True,
        "both: the same session": True,
    }


async def test_a_stateless_call_has_no_session_and_is_checked_against_its_agent(tmp_path: Path) -> None:
    gateway = gateway_for(tmp_path, scope="session")
    with anyio.fail_after(90):
        async with serving(gateway):
            token = token_for(gateway)
            async with http_client(gateway, "mail", token, mode="2026-07-28") as client:
                await client.call_tool("read_inbox", {"folder": "inbox"})
            async with http_client(gateway, "mail", token, mode="2026-07-28") as client:
                attack = await client.call_tool("send_money", {"recipient": ATTACKER_IBAN, "amount": 1})
    assert attack.is_error is True
    assert HELD in text_of(attack)


async def test_redis_going_away_denies_what_must_be_checked(tmp_path: Path) -> None:
    with private_redis(tmp_path / "redis") as redis:
        gateway = gateway_for(tmp_path / "gw", redis=redis.url)
        with anyio.fail_after(90):
            async with serving(gateway):
                token = token_for(gateway)
                async with http_client(gateway, "mail", token) as client:
                    before = await client.call_tool("send_money", {"recipient": USER_IBAN, "amount": 1})
                    redis.stop()
                    ordinary = await client.call_tool("read_inbox", {"folder": "friends"})
                    poisoned = await client.call_tool("read_inbox", {"folder": "inbox"})
                    payment = await client.call_tool("send_money", {"recipient": ATTACKER_IBAN, "amount": 100})
                    redis.start()
                    back = await client.call_tool("send_money", {"recipient": USER_IBAN, "amount": 2})
    assert before.is_error is False
    assert ordinary.is_error is False, "a call with nothing to check passes"
    assert poisoned.is_error is True
    assert "the results check failed" in text_of(poisoned), text_of(poisoned)
    assert ATTACKER_IBAN not in text_of(poisoned), "the result whose values cannot be remembered is withheld"
    assert payment.is_error is True
    assert "the provenance check failed" in text_of(payment), text_of(payment)
    assert back.is_error is False, text_of(back)

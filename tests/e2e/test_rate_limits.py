"""Rate limits end to end: real gateways, real mcp-server-time, real agents over HTTP, a real
webhook receiver, and a real (private) Redis that the tests stop and restart.

Requirements (issue 7): over a limit the agent gets `isError: true` naming the limit and when
to retry; an audit event is written; one alert per burst. Two gateways sharing Redis hold one
per-agent limit together. Redis going away: deny or local fallback as configured, with an
alert; recovery when it returns.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client

from bastion.admin.tokens import Role
from bastion.audit.events import StoredEvent
from bastion.config import load_config
from bastion.gateway.gateway import Gateway, open_admin_token_store
from tests.e2e.conftest import BASTION, VENV_BIN, write_config
from tests.e2e.inprocess import http_client, serving
from tests.e2e.redis_server import private_redis
from tests.e2e.test_event_wiring import committed
from tests.e2e.webhooks import webhook_receiver

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

TIME = {"time": {"command": str(VENV_BIN / "mcp-server-time")}}
UTC = {"timezone": "UTC"}


def alerts_to(url: str) -> dict[str, Any]:
    # No coalescing: every alert Bastion raises reaches the receiver, so "once per burst" is Bastion's doing.
    return {"webhooks": [{"url": url}], "coalesce_window": 0, "backoff": 0.05, "max_backoff": 0.1}


def gateway_for(folder: Path, limits: dict[str, Any], **extra: Any) -> Gateway:
    return Gateway(load_config(write_config(folder, TIME, limits=limits, **extra)))


@asynccontextmanager
async def agent(gateway: Gateway, name: str, mode: str = "legacy") -> AsyncIterator[Client]:
    assert gateway.tokens is not None
    _, token = gateway.tokens.create(name)
    async with http_client(gateway, "time", token, mode) as client:
        yield client


async def texts(client: Client, calls: int) -> list[str | None]:
    """Each call's refusal text, or None when it went through."""
    found: list[str | None] = []
    for _ in range(calls):
        result = await client.call_tool("get_current_time", UTC)
        found.append(result.content[0].text if result.is_error else None)  # type: ignore[union-attr]
    return found


def limited(events: list[StoredEvent]) -> list[StoredEvent]:
    return [e for e in events if e.type == "rate.limited"]


async def test_over_the_per_agent_limit_the_agent_is_told_it_is_audited_and_alerted_once(tmp_path: Path) -> None:
    async with webhook_receiver() as receiver:
        gateway = gateway_for(tmp_path, {"per_agent": "3/minute"}, alerts=alerts_to(receiver.url))
        with anyio.fail_after(90):
            async with serving(gateway), agent(gateway, "eager-bot") as eager, agent(gateway, "calm-bot") as calm:
                results = await texts(eager, 8)
                # A second agent tripping the same limit is a second burst: its alert is our marker
                # that everything the first burst raised has been dispatched.
                calm_results = await texts(calm, 4)
                tripped = await receiver.wait_for_count("rate_limit_tripped", 2)
                events = await committed(gateway, "rate.limited", "call.completed")

    assert results[:3] == [None, None, None]
    assert [t is None for t in calm_results] == [True, True, True, False]
    for text in results[3:]:
        assert text is not None
        assert text.startswith(
            "Bastion denied this tool call: rate limit per_agent 3/minute exceeded for agent 'eager-bot'; retry after "
        )
        assert text.endswith(" s [check: rate-limit]")
    refusals = limited(events)
    assert [(e.agent, e.server, e.details["tool"], e.details["limit"]) for e in refusals] == [
        ("eager-bot", "time", "get_current_time", "per_agent 3/minute")
    ] * 5 + [("calm-bot", "time", "get_current_time", "per_agent 3/minute")]
    assert all(1 <= e.details["retry_after_s"] <= 60 for e in refusals)
    completed = {e.correlation_id: e for e in events if e.type == "call.completed"}
    for refusal in refusals:
        assert completed[refusal.correlation_id].details["outcome"] == "denied"
        assert completed[refusal.correlation_id].details["rule"] == "rate-limit"
    # Five refusals, one alert; the other agent's burst, one more.
    assert [a["details"]["agent"] for a in tripped] == ["eager-bot", "calm-bot"]
    assert tripped[0]["details"]["limit"] == "per_agent 3/minute"
    assert tripped[0]["severity"] == "warning"
    assert [a["kind"] for a in receiver.alerts].count("call_denied") == 0


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_request_and_response_size_caps(tmp_path: Path, mode: str) -> None:
    gateway = gateway_for(tmp_path, {"max_response_bytes": 64, "max_request_bytes": 200})
    with anyio.fail_after(60):
        async with serving(gateway), agent(gateway, "bot", mode) as client:
            big = await client.call_tool("get_current_time", UTC)
            too_much = await client.call_tool("get_current_time", {"timezone": "UTC", "note": "x" * 300})
            events = await committed(gateway, "rate.limited")
    assert big.is_error is True
    assert "over the max_response_bytes limit of 64 bytes, so Bastion withheld it" in big.content[0].text  # type: ignore[union-attr]
    assert too_much.is_error is True
    assert "over the max_request_bytes limit of 200 bytes" in too_much.content[0].text  # type: ignore[union-attr]
    assert [e.details["limit"] for e in events] == ["max_response_bytes 64", "max_request_bytes 200"]


async def test_two_gateways_sharing_redis_hold_one_per_agent_limit(tmp_path: Path) -> None:
    with private_redis(tmp_path / "redis") as redis:
        limits = {"per_agent": "5/minute", "storage": redis.url}
        first = gateway_for(tmp_path / "one", limits)
        second = gateway_for(tmp_path / "two", limits)
        with anyio.fail_after(90):
            async with AsyncExitStack() as stack:
                await stack.enter_async_context(serving(first))
                await stack.enter_async_context(serving(second))
                a = await stack.enter_async_context(agent(first, "shared-bot"))
                b = await stack.enter_async_context(agent(second, "shared-bot"))
                other = await stack.enter_async_context(agent(second, "other-bot"))
                results = []
                for client in (a, b, a, b, a, b, a, b):
                    results += await texts(client, 1)
                others = await texts(other, 1)
                code, out, err = await _bastion("limits", "--config", str(first.config.source))

    # Five calls in all, whichever replica took them; the rest refused on both.
    assert [r is None for r in results] == [True] * 5 + [False] * 3
    assert all("per_agent 5/minute exceeded for agent 'shared-bot'" in (r or "") for r in results[5:])
    assert others == [None]
    # `bastion limits` reads the same counters from Redis.
    assert code == 0, err
    assert "per_agent 5/minute (each agent)" in out
    rows = [line.split() for line in out.splitlines() if line.strip().startswith("per_agent 5/minute  ")]
    assert {(r[2], r[5], r[6]) for r in rows} == {("shared-bot", "5", "0"), ("other-bot", "1", "4")}


async def _bastion(*args: str) -> tuple[int, str, str]:
    done = await anyio.run_process([BASTION, *args], check=False)
    return done.returncode, done.stdout.decode(), done.stderr.decode()


@pytest.mark.parametrize("mode", ["deny", "local"])
async def test_redis_going_away_falls_back_as_configured_and_recovers(tmp_path: Path, mode: str) -> None:
    with private_redis(tmp_path / "redis") as redis:
        async with webhook_receiver() as receiver:
            limits = {"per_agent": "3/minute", "storage": redis.url, "on_storage_failure": mode}
            gateway = gateway_for(tmp_path, limits, alerts=alerts_to(receiver.url))
            with anyio.fail_after(90):
                async with serving(gateway), agent(gateway, "bot") as client:
                    assert gateway.limits is not None
                    assert gateway.limits.counters is not None
                    counters = gateway.limits.counters
                    before = await texts(client, 1)
                    redis.stop()
                    during = await texts(client, 4)
                    failing = await receiver.wait_for_kind("rate_limit_storage_failing")
                    redis.start()
                    counters.retry_interval = 0  # try Redis on the next call (the default waits a second)
                    after = await texts(client, 4)
                    recovered = await receiver.wait_for_kind("rate_limit_storage_recovered")
                    events = await committed(gateway, "rate.storage_failing", "rate.storage_recovered")

    assert before == [None]
    if mode == "deny":
        # Fail closed: nothing passes while the counters cannot be kept.
        assert all(
            t is not None and f"the rate-limit storage {redis.url} cannot be reached" in t and "retry later" in t
            for t in during
        )
    else:
        # Counted in memory meanwhile: the limit still holds (3 a minute, counted afresh).
        assert [t is None for t in during] == [True, True, True, False]
        assert "per_agent 3/minute exceeded" in (during[3] or "")
    # Back on Redis (restarted empty: this private one keeps nothing on disk), counting afresh.
    assert [t is None for t in after] == [True, True, True, False]
    assert failing["severity"] == "critical"
    assert failing["details"]["storage"] == redis.url
    assert recovered["details"]["storage"] == redis.url
    assert [a["kind"] for a in receiver.alerts].count("rate_limit_storage_failing") == 1
    assert [e.type for e in events] == ["rate.storage_failing", "rate.storage_recovered"]
    assert "ConnectionError" in events[0].details["error"] or "Error" in events[0].details["error"]


async def test_bastion_limits_reads_memory_counters_from_the_running_gateway(tmp_path: Path) -> None:
    limits = {"per_agent": "10/minute", "per_tool": {"get_*": {"rate": "20/hour", "per": "all"}}}
    gateway = gateway_for(tmp_path, {**limits, "concurrent_per_agent": 4})
    config = str(gateway.config.source)
    with anyio.fail_after(60):
        async with serving(gateway), agent(gateway, "busy-bot") as client:
            await texts(client, 3)
            admin_tokens = open_admin_token_store(gateway.config)
            try:
                _, viewer = admin_tokens.create("watcher", Role.VIEWER)
            finally:
                admin_tokens.close()
            with_token = await _bastion("limits", "--config", config, "--admin-token", viewer)
            as_json = await _bastion("limits", "--config", config, "--admin-token", viewer, "--format", "json")
            without = await _bastion("limits", "--config", config)

    code, out, err = with_token
    assert code == 0, err
    assert "per_agent 10/minute (each agent)" in out
    assert "per_tool get_* 20/hour (all agents together)" in out
    assert "concurrent_per_agent 4" in out
    [row] = [line.split() for line in out.splitlines() if line.split()[:3] == ["per_agent", "10/minute", "busy-bot"]]
    assert row[5:7] == ["3", "7"]
    usage = json.loads(as_json[1])["usage"]
    assert {(u["limit"], u["agent"], u["tool"], u["used"], u["remaining"]) for u in usage} == {
        ("per_agent 10/minute", "busy-bot", None, 3, 7),
        ("per_tool get_* 20/hour", None, "get_*", 3, 17),
    }
    code, out, _ = without
    assert code == 0
    assert "The counters live in the running gateway's memory" in out
    assert "--admin-token" in out


async def test_requests_per_agent_refuses_at_the_http_level_with_retry_after(tmp_path: Path) -> None:
    async with webhook_receiver() as receiver:
        gateway = gateway_for(tmp_path, {"requests_per_agent": "3/minute"}, alerts=alerts_to(receiver.url))
        with anyio.fail_after(60):
            async with serving(gateway):
                assert gateway.tokens is not None
                _, token = gateway.tokens.create("chatty-bot")
                url = f"{gateway.base_url}/servers/time/mcp"
                ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
                headers = {"Authorization": f"Bearer {token}", "Accept": "application/json, text/event-stream"}
                async with httpx2.AsyncClient(headers=headers) as http:
                    statuses = [(await http.post(url, json=ping)).status_code for _ in range(3)]
                    refused = await http.post(url, json=ping)
                    again = await http.post(url, json=ping)
                    unauthenticated = await http.post(url, json=ping, headers={"Authorization": "Bearer nope"})
                [tripped] = await receiver.wait_for_count("rate_limit_tripped", 1)
                events = await committed(gateway, "rate.limited")

    assert 429 not in statuses
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    body = refused.json()
    assert body["error"] == "rate_limited"
    assert body["error_description"].startswith("rate limit requests_per_agent 3/minute exceeded for agent")
    assert again.status_code == 429
    assert unauthenticated.status_code == 401  # 401 comes first: nothing is counted for strangers
    assert [(e.agent, e.server, e.details["limit"]) for e in events] == [
        ("chatty-bot", "time", "requests_per_agent 3/minute")
    ] * 2
    assert tripped["details"]["agent"] == "chatty-bot"

"""Real gateways writing their audit log to PostgreSQL: calls recorded and searchable, a chain that
verifies, several replicas appending at once, and a database that stops taking writes."""

from __future__ import annotations

import json
import sys
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest

from tests.e2e.clients import connect
from tests.e2e.conftest import SERVERS_DIR, VENV_BIN, RunningGateway, start_gateway, write_config
from tests.unit.audit.postgres import postgres_role_schema, postgres_schema, set_read_only

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]
REPLICAS = 2
AGENTS_PER_REPLICA = 4
CALLS_PER_AGENT = 15


def crashy_servers(scratch: Path) -> dict[str, Any]:
    """The `note` server, sandboxed, allowed to write its notes in `scratch` only."""
    scratch.mkdir(exist_ok=True)
    crashy = {"command": sys.executable, "args": [str(SERVERS_DIR / "crashy_server.py")]}
    return {"crashy": {**crashy, "sandbox": {"writable": [str(scratch)]}}}


def notes_recorded(gateway: RunningGateway) -> list[str]:
    events = gateway.audit_events()
    return [e["arguments"]["text"] for e in events if e["type"] == "call.requested" and e["tool"] == "note"]


async def test_gateway_on_postgres(tmp_path):
    with postgres_schema() as url:
        servers = {"time": {"command": str(VENV_BIN / "mcp-server-time")}}
        gateway = start_gateway(write_config(tmp_path, servers, audit={"url": url}))
        try:
            nonce = uuid.uuid4().hex[:10]
            with anyio.fail_after(60):
                async with connect(gateway, "time") as client:
                    await client.call_tool("get_current_time", {"timezone": "UTC", "note": f"pg{nonce}"})
        finally:
            gateway.stop()

        types = [e["type"] for e in gateway.audit_events()]
        found = gateway.cli("audit", "search", "--text", f"pg{nonce}", "--format", "jsonl")
        verified = gateway.cli("audit", "verify")

    assert {"config.loaded", "token.created", "call.requested", "call.verdict", "call.completed"} <= set(types)
    assert found.returncode == 0, found.stderr
    [hit] = [json.loads(line) for line in found.stdout.splitlines()]
    assert hit["type"] == "call.requested"
    assert verified.returncode == 0, verified.stderr
    assert "postgresql://" in verified.stdout


async def test_replicas_append_to_one_chain_each_call_exactly_once(tmp_path):
    """Issue 7: gateway replicas share one PostgreSQL audit store; calls through both at once."""
    scratch = tmp_path / "scratch"
    with postgres_schema() as url:
        gateways = [
            start_gateway(write_config(tmp_path / f"replica{r}", crashy_servers(scratch), audit={"url": url}))
            for r in range(REPLICAS)
        ]
        sent: list[str] = []

        async def agent(gateway: RunningGateway, name: str) -> None:
            async with connect(gateway, "crashy") as client:
                for n in range(CALLS_PER_AGENT):
                    text = f"{name}-{n}-{uuid.uuid4().hex[:6]}"
                    result = await client.call_tool("note", {"path": str(scratch / "notes.txt"), "text": text})
                    assert not result.is_error, result
                    sent.append(text)

        try:
            with anyio.fail_after(180):
                async with anyio.create_task_group() as tg:
                    for r, gateway in enumerate(gateways):
                        for a in range(AGENTS_PER_REPLICA):
                            tg.start_soon(agent, gateway, f"r{r}a{a}")
        finally:
            for gateway in gateways:
                gateway.stop()

        events = gateways[0].audit_events()
        verified = gateways[1].cli("audit", "verify")

    notes = [e for e in events if e.get("tool") == "note"]
    requested = Counter(e["arguments"]["text"] for e in notes if e["type"] == "call.requested")
    completed = Counter(e["correlation_id"] for e in notes if e["type"] == "call.completed")
    assert len(sent) == REPLICAS * AGENTS_PER_REPLICA * CALLS_PER_AGENT
    assert set(requested) == set(sent)
    assert set(requested.values()) == {1}, "each call requested exactly once"
    assert len(completed) == len(sent)
    assert set(completed.values()) == {1}, "each call completed exactly once"
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert sum(e["type"] == "config.loaded" for e in events) == REPLICAS
    assert verified.returncode == 0, verified.stderr


async def test_database_gone_read_only_refuses_calls_then_recovers(tmp_path):
    """A store made unwritable (the role's sessions turned read-only, as after a failover to a
    standby; no fault injection) refuses calls and recovers by itself once writes work again."""
    scratch = tmp_path / "scratch"
    notes = scratch / "reached-upstream.txt"
    with postgres_role_schema() as (url, role):
        gateway = start_gateway(write_config(tmp_path, crashy_servers(scratch), audit={"url": url}))
        try:
            with anyio.fail_after(90):
                async with connect(gateway, "crashy") as client, httpx2.AsyncClient(timeout=10) as http:
                    await client.call_tool("note", {"path": str(notes), "text": "before"})
                    set_read_only(role, True)
                    try:
                        with pytest.raises(Exception, match="audit log cannot be written"):
                            await client.call_tool("note", {"path": str(notes), "text": "while-read-only"})
                        ready = (await http.get(f"{gateway.base_url}/readyz", headers=gateway.status_headers())).json()
                        assert ready["audit_store"] == "failing"
                    finally:
                        set_read_only(role, False)
                    after = f"after-{uuid.uuid4().hex[:6]}"
                    result = await client.call_tool("note", {"path": str(notes), "text": after})
                    assert not result.is_error
                    ready = (await http.get(f"{gateway.base_url}/readyz", headers=gateway.status_headers())).json()
                    assert ready["audit_store"] == "writable"
        finally:
            gateway.stop()
        recorded = notes_recorded(gateway)
        verified = gateway.cli("audit", "verify")

    assert notes.read_text().split() == ["before", after], "the refused call never reached the upstream"
    assert recorded == ["before", after]
    assert verified.returncode == 0, verified.stderr

"""Every request lands in the audit log, a tools/call durably before it is forwarded."""

from __future__ import annotations

import uuid
from datetime import datetime

import anyio
import pytest

from tests.e2e.clients import connect

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]


@pytest.mark.parametrize(("front", "transport"), [("http", "streamable-http"), ("sse", "sse"), ("wrap", "stdio")])
async def test_each_call_is_recorded_with_who_what_and_how_it_ended(gateway, front, transport):
    agent = f"auditor-{uuid.uuid4().hex[:8]}"
    token = gateway.create_token(agent)
    with anyio.fail_after(60):
        async with connect(gateway, "time", front=front, token=token) as client:
            await client.list_tools()
            ok = await client.call_tool("get_current_time", {"timezone": "Europe/Lisbon"})
            bad = await client.call_tool("get_current_time", {"timezone": "Not/AZone"})
    assert not ok.is_error
    assert bad.is_error
    records = gateway.audit_records()
    expected_agent = agent if front != "wrap" else None
    mine = [r for r in records if (r["agent"] == expected_agent if expected_agent else r["transport"] == "stdio")]
    calls = [r for r in mine if r["tool"] == "get_current_time" and r["server"] == "time"]
    by_zone = {r["arguments"]["timezone"]: r for r in calls}
    good, failed = by_zone["Europe/Lisbon"], by_zone["Not/AZone"]
    for record in (good, failed):
        assert record["tool"] == "get_current_time"
        assert record["outcome"] == "allowed"
        assert record["transport"] == transport
        assert record["result_size"] > 0
        assert record["latency_ms"] > 0
        assert datetime.fromisoformat(record["time"].replace("Z", "+00:00")).year >= 2026
    assert good["is_error"] is False
    assert failed["is_error"] is True
    assert any(r["method"] == "tools/list" for r in mine), "every request is audited, not only tool calls"
    if front != "wrap":
        assert all(r["agent"] == agent for r in mine)


@pytest.mark.parametrize("front", ["http", "wrap"])
async def test_tool_call_is_durable_before_the_upstream_sees_it(gateway, front):
    nonce = uuid.uuid4().hex
    db_path = str(gateway.data_dir / "audit.db")
    with anyio.fail_after(60):
        async with connect(gateway, "crashy", front=front) as client:
            seen = await client.call_tool("peek_audit", {"db_path": db_path, "nonce": nonce})
    assert seen.content[0].text == "1", "the upstream ran before its audit record was committed"
    finished = [r for r in gateway.audit_records() if nonce in str(r["arguments"])]
    assert [r["outcome"] for r in finished] == ["allowed"]


async def test_upstream_error_is_recorded_as_error(gateway):
    with anyio.fail_after(60):
        async with connect(gateway, "crashy", front="http") as client:
            with pytest.raises(Exception, match="stopped while handling this request"):
                await client.call_tool("die_midway", {})
            await client.call_tool("echo", {"text": "after"})
    died = [r for r in gateway.audit_records() if r["tool"] == "die_midway"]
    assert died
    assert all(r["outcome"] == "error" for r in died)
    assert all("stopped" in (r["error"] or "") for r in died)

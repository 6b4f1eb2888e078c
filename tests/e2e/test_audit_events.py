"""The gateway's own events: config loaded, auth failures, verdicts; and a chain that verifies."""

from __future__ import annotations

import hashlib
import uuid

import anyio
import httpx2
import pytest

from tests.e2e.clients import connect

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]


async def test_front_door_refusals_are_audited(gateway):
    limited = gateway.create_token(f"limited-{uuid.uuid4().hex[:6]}", servers="git")
    bad = f"bst_00000000_{uuid.uuid4().hex}{uuid.uuid4().hex[:11]}"
    async with httpx2.AsyncClient(timeout=10) as http:
        unknown = await http.post(gateway.url("time"), headers={"Authorization": f"Bearer {bad}"}, json={})
        forbidden = await http.post(gateway.url("time"), headers=gateway.headers(limited), json={})
    assert (unknown.status_code, forbidden.status_code) == (401, 403)

    failures = [e for e in gateway.audit_events() if e["type"] == "auth.failure"]

    assert any(e["status"] == 401 and e["agent"] is None and e["path"] == "/servers/time/mcp" for e in failures)
    [refused] = [e for e in failures if e["status"] == 403 and e["agent"] == limited_agent(gateway, limited)]
    assert refused["server"] == "time"
    assert bad not in str(failures), "a presented credential is never recorded"


def limited_agent(gateway, token):
    events = gateway.audit_events()
    token_id = token.split("_")[1]
    return next(e["agent"] for e in events if e["type"] == "token.created" and e["token_id"] == token_id)


async def test_config_loaded_is_recorded_with_the_file_digest(gateway):
    digest = hashlib.sha256(gateway.config_path.read_bytes()).hexdigest()

    loaded = [e for e in gateway.audit_events() if e["type"] == "config.loaded"]

    assert loaded
    assert loaded[0]["digest"] == digest
    assert loaded[0]["source"] == str(gateway.config_path)
    assert "time" in loaded[0]["servers"]


async def test_a_call_has_requested_verdict_and_completed_events_tied_together(gateway):
    agent = f"tied-{uuid.uuid4().hex[:6]}"
    token = gateway.create_token(agent)
    with anyio.fail_after(60):
        async with connect(gateway, "time", token=token) as client:
            await client.call_tool("get_current_time", {"timezone": "Asia/Tokyo"})

    mine = [e for e in gateway.audit_events() if e["agent"] == agent and e.get("tool") == "get_current_time"]
    [call_id] = {e["correlation_id"] for e in mine}

    assert [e["type"] for e in mine] == ["call.requested", "call.verdict", "call.completed"]
    assert mine[1]["verdict"] == "allow"
    assert mine[2]["outcome"] == "allowed"
    assert "Asia/Tokyo" in str(mine[2]["result"])
    assert call_id


async def test_the_gateway_chain_verifies(gateway):
    done = gateway.cli("audit", "verify")

    assert done.returncode == 0, done.stderr
    assert "OK" in done.stdout

"""The guard pipeline decides every tool call, fails closed, and its denials are audited.

The gateway runs in-process (so a test can plug in checks); the server (mcp-server-time),
the HTTP front door and the client are all real.
"""

from __future__ import annotations

import anyio
import pytest
from mcp.shared.exceptions import MCPError

from bastion.config import load_config
from bastion.gateway.gateway import Gateway
from bastion.guard.server_access import ServerAccessCheck
from bastion.model import Decision, ToolCall, Verdict
from tests.e2e.audit_calls import store_calls
from tests.e2e.conftest import VENV_BIN, write_config
from tests.e2e.inprocess import http_client, serving

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]


class ScriptedCheck:
    """Decides by the `timezone` argument: a stand-in for later policy checks, and a fault injector."""

    name = "scripted"

    async def check_tool_call(self, call: ToolCall) -> Verdict | None:
        zone = call.arguments.get("timezone")
        if zone == "Explode/Here":
            raise RuntimeError("a bug in a check")
        if zone == "Deny/Here":
            return Verdict(Decision.DENY, "this timezone is off limits")
        if zone == "Ask/Here":
            return Verdict(Decision.ASK, "a person must look at this timezone")
        return None


class NeverReached:
    name = "after"
    calls = 0

    async def check_tool_call(self, call: ToolCall) -> Verdict | None:
        NeverReached.calls += 1
        return None


CASES = [
    ("UTC", False, None, "allowed"),
    ("Deny/Here", True, "this timezone is off limits [check: scripted]", "denied"),
    ("Explode/Here", True, "the scripted check failed (RuntimeError), so the call is denied", "denied"),
    ("Ask/Here", True, "queued for human review as approval", "denied"),
]


async def test_checks_decide_fail_closed_and_are_audited(tmp_path):
    servers = {"time": {"command": str(VENV_BIN / "mcp-server-time")}}
    config = load_config(write_config(tmp_path, servers, approvals={"wait": 0}))
    gateway = Gateway(config, checks=[ServerAccessCheck(), ScriptedCheck(), NeverReached()])
    results = {}
    with anyio.fail_after(60):
        async with serving(gateway):
            assert gateway.tokens is not None
            _, token = gateway.tokens.create("guarded-agent")
            async with http_client(gateway, "time", token) as client:
                for zone, _, _, _ in CASES:
                    results[zone] = await client.call_tool("get_current_time", {"timezone": zone})
    records = {r["arguments"]["timezone"]: r for r in store_calls(gateway.audit) if r["method"] == "tools/call"}
    for zone, is_error, message, outcome in CASES:
        result = results[zone]
        assert result.is_error is is_error, zone
        if message is not None:
            assert message in result.content[0].text
            assert result.content[0].text.startswith("Bastion denied this tool call")
        record = records[zone]
        assert record["outcome"] == outcome, zone
        assert record["agent"] == "guarded-agent"
        if outcome == "denied":
            assert record["check"] == ("approval" if zone == "Ask/Here" else "scripted")
            assert record["error"]
    # A decided call stops the chain; only the allowed call reached the last check.
    assert NeverReached.calls == 1


class DefinitionRecorder:
    """Hides `convert_time` from tool lists and remembers the definitions calls arrive with."""

    name = "definitions"

    def __init__(self) -> None:
        self.seen: dict[str, object] = {}

    async def check_tool_call(self, call: ToolCall) -> Verdict | None:
        self.seen[call.tool] = call.definition
        return None

    async def filter_tool_list(self, principal, server, tools):
        return [tool for tool in tools if tool["name"] != "convert_time"]


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_checks_filter_tool_lists_and_see_declared_definitions(tmp_path, mode):
    config = load_config(write_config(tmp_path, {"time": {"command": str(VENV_BIN / "mcp-server-time")}}))
    recorder = DefinitionRecorder()
    gateway = Gateway(config, checks=[ServerAccessCheck(), recorder])
    with anyio.fail_after(60):
        async with serving(gateway):
            assert gateway.tokens is not None
            _, token = gateway.tokens.create("lister")
            async with http_client(gateway, "time", token, mode=mode) as client:
                # A call before any tools/list still carries the definition, fetched by Bastion.
                await client.call_tool("get_current_time", {"timezone": "UTC"})
                listed = await client.list_tools()
                with pytest.raises(MCPError, match="no_such_tool"):
                    await client.call_tool("no_such_tool", {})
    assert [tool.name for tool in listed.tools] == ["get_current_time"]
    definition = recorder.seen["get_current_time"]
    assert isinstance(definition, dict)
    assert definition["name"] == "get_current_time"
    assert "timezone" in definition["inputSchema"]["properties"]
    assert recorder.seen["no_such_tool"] is None

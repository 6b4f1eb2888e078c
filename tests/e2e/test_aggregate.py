"""`/mcp` and virtual servers (issue 18): real servers behind one URL, real SDK clients.

The gateway serves time, git, fetch and (with npx) server-everything; a policy rule denies
`convert_time` by its real name; git renames one tool and hides another; a virtual server
`support` holds time's tools and `git_status`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx2
import mcp_types as types
import pytest
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from tests.e2e.conftest import (
    INSPECTOR_PACKAGE,
    VENV_BIN,
    RunningGateway,
    server_table,
    start_gateway,
    write_config,
)

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

MODEL_API_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
HAS_NPX = shutil.which("npx") is not None
NO_CONVERSIONS = {"name": "no-conversions", "match": {"server": "time", "tool": "convert_time"}, "action": "deny"}


@pytest.fixture(scope="module")
def aggregate_gateway(
    tmp_path_factory: pytest.TempPathFactory, git_repo: Any, npm_cache: Any
) -> Iterator[RunningGateway]:
    folder = tmp_path_factory.mktemp("aggregate")
    table = server_table(git_repo, folder / "data", npm_cache, tmp_path_factory.getbasetemp())
    servers: dict[str, Any] = {
        "time": table["time"],
        "git": {
            **table["git"],
            "tools": {
                "git_log": {"expose_as": "history", "description": "The commits of the repository."},
                "git_reset": {"hidden": True},
            },
        },
        "fetch": {"command": str(VENV_BIN / "mcp-server-fetch"), "untrusted": True},
    }
    if HAS_NPX:
        servers["everything"] = {**table["everything"], "expose_as": "every"}
    config = write_config(
        folder,
        servers,
        virtual_servers={"support": {"tools": ["time__*", "git__git_status"]}},
        agents={"ops": {}, "clerk": {"servers": ["time"]}, "helpdesk": {"servers": ["support"]}},
        policy={"rules": [NO_CONVERSIONS]},
    )
    running = start_gateway(config)
    try:
        yield running
    finally:
        running.stop()


@asynccontextmanager
async def aggregate(
    gateway: RunningGateway,
    token: str,
    *,
    path: str = "/mcp",
    front: str = "http",
    mode: str = "legacy",
    **options: Any,
) -> AsyncIterator[Client]:
    headers = gateway.headers(token)
    if front == "sse":
        async with Client(sse_client(gateway.base_url + path, headers=headers), mode=mode, **options) as client:
            yield client
        return
    async with (
        httpx2.AsyncClient(headers=headers, timeout=60) as http,
        Client(streamable_http_client(gateway.base_url + path, http_client=http), mode=mode, **options) as client,
    ):
        yield client


@pytest.mark.parametrize(
    ("front", "mode"), [("http", "legacy"), ("http", "2026-07-28"), ("sse", "legacy")], ids=["http", "http-2026", "sse"]
)
async def test_one_url_lists_every_server_and_calls_each(aggregate_gateway: RunningGateway, front: str, mode: str):
    gateway = aggregate_gateway
    token = gateway.create_token("ops")
    with anyio.fail_after(120):
        async with aggregate(gateway, token, path="/sse" if front == "sse" else "/mcp", front=front, mode=mode) as c:
            tools = {t.name: t for t in (await c.list_tools()).tools}
            assert {"time__get_current_time", "git__git_status", "history", "fetch__fetch"} <= tools.keys()
            if HAS_NPX:
                assert "every__echo" in tools
            assert all(MODEL_API_NAME.fullmatch(name) for name in tools)
            assert "git__git_reset" not in tools
            assert "git__git_log" not in tools
            assert tools["history"].description == "The commits of the repository."
            assert "time__convert_time" not in tools  # a policy rule denies it by its real name
            result = await c.call_tool("time__get_current_time", {"timezone": "UTC"})
            assert not result.is_error
            assert '"timezone": "UTC"' in result.content[0].text


async def test_calls_are_judged_and_audited_by_their_real_names(aggregate_gateway: RunningGateway):
    gateway = aggregate_gateway
    token = gateway.create_token("ops")
    with anyio.fail_after(120):
        async with aggregate(gateway, token) as client:
            allowed = await client.call_tool("git__git_status", {"repo_path": str(gateway_repo(gateway))})
            assert not allowed.is_error, allowed.content
            denied = await client.call_tool("time__convert_time", {"source_timezone": "UTC", "time": "12:00"})
            assert denied.is_error
            assert denied.content[0].text.endswith("[check: policy/rule:no-conversions]")
            with pytest.raises(MCPError, match="no tool named 'git__git_reset'"):
                await client.call_tool("git__git_reset", {"repo_path": "."})
    events = [e for e in gateway.audit_events() if e["type"] == "call.requested" and e["method"] == "tools/call"]
    mine = [(e["server"], e["tool"], e.get("endpoint")) for e in events if e["agent"] == "ops"]
    assert ("git", "git_status", "aggregate") in mine
    assert ("time", "convert_time", "aggregate") in mine
    completed = {e["correlation_id"]: e for e in gateway.audit_events() if e["type"] == "call.completed"}
    convert = next(e for e in events if e["tool"] == "convert_time" and e["agent"] == "ops")
    assert completed[convert["correlation_id"]]["outcome"] == "denied"
    assert completed[convert["correlation_id"]]["rule"] == "policy/rule:no-conversions"


def gateway_repo(gateway: RunningGateway) -> str:
    import yaml

    config = yaml.safe_load(gateway.config_path.read_text())
    return str(config["servers"]["git"]["args"][1])


async def test_a_token_scoped_to_one_server_sees_only_its_tools(aggregate_gateway: RunningGateway):
    gateway = aggregate_gateway
    token = gateway.create_token("clerk", servers="time")
    with anyio.fail_after(60):
        async with aggregate(gateway, token) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            assert names
            assert all(name.startswith("time__") for name in names)
            with pytest.raises(MCPError, match="no tool named 'git__git_status'"):
                await client.call_tool("git__git_status", {"repo_path": "."})


@pytest.mark.parametrize(("agent", "front"), [("ops", "http"), ("helpdesk", "http"), ("helpdesk", "sse")])
async def test_a_virtual_server_serves_its_tool_set(aggregate_gateway: RunningGateway, agent: str, front: str):
    gateway = aggregate_gateway
    token = gateway.create_token(agent, servers="support" if agent == "helpdesk" else None)
    with anyio.fail_after(60):
        async with aggregate(
            gateway, token, path=f"/servers/support/{front.replace('http', 'mcp')}", front=front
        ) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            assert names == {"time__get_current_time", "git__git_status"}
            result = await client.call_tool("time__get_current_time", {"timezone": "UTC"})
            assert not result.is_error
            with pytest.raises(MCPError, match="no tool named 'history'"):
                await client.call_tool("history", {"repo_path": "."})
    events = [e for e in gateway.audit_events() if e["type"] == "call.requested" and e["agent"] == agent]
    assert any(e["server"] == "time" and e.get("endpoint") == "virtual:support" for e in events)


async def test_a_token_for_a_virtual_server_reaches_nothing_else(aggregate_gateway: RunningGateway):
    gateway = aggregate_gateway
    token = gateway.create_token("helpdesk", servers="support")
    response = httpx2.post(gateway.url("time"), headers=gateway.headers(token), json={}, timeout=10)
    assert response.status_code == 403
    with anyio.fail_after(60):
        async with aggregate(gateway, token) as client:  # it reaches no real server itself
            assert (await client.list_tools()).tools == []


@pytest.mark.skipif(not HAS_NPX, reason="server-everything runs through npx")
async def test_prompts_and_resources_through_one_url(aggregate_gateway: RunningGateway):
    gateway = aggregate_gateway
    token = gateway.create_token("ops")
    with anyio.fail_after(120):
        async with aggregate(gateway, token) as client:
            prompts = {p.name for p in (await client.list_prompts()).prompts}
            assert {"every__simple-prompt", "fetch__fetch"} <= prompts
            got = await client.get_prompt("every__simple-prompt")
            assert got.messages
            resources = (await client.list_resources()).resources
            assert resources
            read = await client.read_resource(str(resources[0].uri))
            assert read.contents
            with pytest.raises(MCPError, match="no listed resource"):
                await client.read_resource("test://nobody/lists/this")
    events = [e for e in gateway.audit_events() if e["type"] == "call.requested" and e["method"] == "resources/read"]
    assert any(e["server"] == "everything" and e.get("endpoint") == "aggregate" for e in events)


@pytest.mark.skipif(not HAS_NPX, reason="server-everything runs through npx")
async def test_a_servers_sampling_request_during_a_call_reaches_the_agent(aggregate_gateway: RunningGateway):
    asked: list[str] = []

    async def sampling(ctx: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
        asked.append("sampling")
        text = types.TextContent(type="text", text="sampled by the agent")
        return types.CreateMessageResult(role="assistant", content=text, model="test-model")

    token = aggregate_gateway.create_token("ops")
    with anyio.fail_after(90):
        async with aggregate(aggregate_gateway, token, sampling_callback=sampling) as client:
            sampled = await client.call_tool("every__trigger-sampling-request", {"prompt": "hello", "maxTokens": 10})
    assert "sampled by the agent" in str(sampled.content)
    assert asked == ["sampling"]


@pytest.mark.parametrize("path", ["/mcp", "/sse", "/messages/", "/servers/support/mcp"])
def test_the_new_routes_want_a_credential(aggregate_gateway: RunningGateway, path: str):
    response = httpx2.post(aggregate_gateway.base_url + path, json={}, timeout=10)
    assert response.status_code == 401
    assert "resource_metadata=" in response.headers["www-authenticate"]


def inspector(gateway: RunningGateway, *args: str) -> Any:
    """The MCP Inspector's CLI (no header option) on `bastion wrap --all`: `/mcp` over stdio."""
    if not HAS_NPX:
        pytest.fail("npx is required for the Inspector test (install Node.js)")
    env_args = ["-e", f"BASTION_CONFIG={gateway.config_path}", "-e", "BASTION_WRAP_ALL=1"]
    argv = ["npx", "-y", INSPECTOR_PACKAGE, "--cli", *env_args, str(VENV_BIN / "bastion"), "wrap", *args]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=180, check=False, env={**os.environ})
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def test_the_inspector_lists_and_calls_every_server_as_one(aggregate_gateway: RunningGateway):
    listed = inspector(aggregate_gateway, "--method", "tools/list")
    names = {t["name"] for t in listed["tools"]}
    assert {"time__get_current_time", "git__git_status", "history"} <= names
    repo = gateway_repo(aggregate_gateway)
    called = inspector(
        aggregate_gateway, "--method", "tools/call", "--tool-name", "history", "--tool-arg", f"repo_path={repo}"
    )
    assert called["isError"] is False
    assert "first commit" in called["content"][0]["text"]
    local = [e for e in aggregate_gateway.audit_events() if e["type"] == "call.requested" and e["tool"] == "git_log"]
    assert any(e["agent"].startswith("local:") and e["server"] == "git" and e["endpoint"] == "aggregate" for e in local)

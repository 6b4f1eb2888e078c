"""The relay against the reference: the same scripted sessions, direct, through the SDK path, through the relay.

A real SDK client (`mcp.Client`) runs one script against a real server (the probe in
tests/e2e/servers, over stdio), then against two in-process gateways serving it over
Streamable HTTP: one with the SDK's server stack (`BASTION_RELAY=0`, the reference) and
one with Bastion's relay (`BASTION_RELAY=1`). What the agent sees (results, errors,
progress, log messages, server-to-client requests) must be the same, ids aside.
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import mcp_types as types
import pytest
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from pydantic import BaseModel

from bastion.audit.chain import decode_row
from bastion.audit.export import event_record
from bastion.audit.query import EventQuery
from bastion.config import load_config
from bastion.gateway.gateway import Gateway
from bastion.guard.server_access import ServerAccessCheck
from bastion.model import Decision, ToolCall, Verdict
from bastion.relay import RELAY_ENV
from tests.e2e.conftest import SERVERS_DIR, write_config
from tests.e2e.inprocess import serving

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.e2e,
    pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning"),
]

PROBE = [sys.executable, str(SERVERS_DIR / "relay_probe_server.py")]


def probe(mode: str) -> list[str]:
    """The probe's command: handshake era only for a legacy agent (so server-to-client requests
    reach the agent in-band), both eras for a 2026 one."""
    return [*PROBE, "--legacy"] if mode == "legacy" else PROBE


Steps = list[tuple[str, Any]]


class DenyForbidden:
    """Denies `echo` of the text `forbidden`: a stand-in for a policy rule."""

    name = "policy"

    async def check_tool_call(self, call: ToolCall) -> Verdict | None:
        if call.tool == "echo" and call.arguments.get("text") == "forbidden":
            return Verdict(Decision.DENY, "forbidden text", check="policy:forbidden")
        return None


def shape(value: Any) -> Any:
    """What the agent sees of a result, comparable across paths."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json", exclude_none=True, by_alias=True)
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items() if k != "_meta"}
    if isinstance(value, list):
        return [shape(v) for v in value]
    return value


class Agent:
    """The callbacks of one scripted agent, and what they saw."""

    def __init__(self) -> None:
        self.logs: list[Any] = []
        self.sampled: list[str] = []

    async def sampling(self, context: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
        text = "".join(getattr(m.content, "text", "") for m in params.messages)
        self.sampled.append(text)
        return types.CreateMessageResult(
            role="assistant", content=types.TextContent(type="text", text=f"echo {text}"), model="probe-model"
        )

    async def roots(self, context: Any) -> types.ListRootsResult:
        return types.ListRootsResult(roots=[types.Root(uri="file:///probe/root", name="probe")])

    async def logging(self, params: types.LoggingMessageNotificationParams) -> None:
        self.logs.append((params.level, params.data))

    def options(self) -> dict[str, Any]:
        return {
            "sampling_callback": self.sampling,
            "list_roots_callback": self.roots,
            "logging_callback": self.logging,
        }


async def outcome(step: Callable[[], Awaitable[Any]]) -> Any:
    try:
        return ("ok", shape(await step()))
    except MCPError as exc:
        return ("error", exc.error.code, exc.error.message)


async def script(client: Client, agent: Agent, mode: str) -> Steps:
    steps: Steps = []
    tools = await client.list_tools()
    steps.append(("tools/list", sorted(t.name for t in tools.tools)))
    steps.append(("echo", await outcome(lambda: client.call_tool("echo", {"text": "hi"}))))
    steps.append(("fail", await outcome(lambda: client.call_tool("fail", {"reason": "nope"}))))
    steps.append(("no such tool", await outcome(lambda: client.call_tool("missing", {}))))
    seen: list[Any] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    counted = await outcome(lambda: client.call_tool("count", {"steps": 3}, progress_callback=on_progress))
    steps += [("count", counted), ("progress", seen)]
    steps.append(("resources/list", await outcome(client.list_resources)))
    steps.append(("templates", await outcome(client.list_resource_templates)))
    steps.append(("read", await outcome(lambda: client.read_resource("probe://note"))))
    steps.append(("read template", await outcome(lambda: client.read_resource("probe://item/seven"))))
    steps.append(("read missing", await outcome(lambda: client.read_resource("probe://missing"))))
    steps.append(("prompts/list", await outcome(client.list_prompts)))
    steps.append(("prompt", await outcome(lambda: client.get_prompt("greet", {"name": "Ada"}))))
    ref = types.PromptReference(type="ref/prompt", name="greet")
    steps.append(("complete", await outcome(lambda: client.complete(ref, {"name": "name", "value": "A"}))))
    if mode == "legacy":
        steps.append(("setLevel", await outcome(lambda: client.set_logging_level("debug"))))
        steps.append(("shout", await outcome(lambda: client.call_tool("shout", {"text": "careful"}))))
        steps.append(("sampling", await outcome(lambda: client.call_tool("ask_model", {"question": "why?"}))))
        steps.append(("roots", await outcome(lambda: client.call_tool("list_roots", {}))))
    steps.append(("ping", await outcome(client.send_ping)))
    # Cancellation mid-call: the call is abandoned once it has started, the session goes on.
    started = anyio.Event()

    async def on_wait(progress: float, total: float | None, message: str | None) -> None:
        started.set()

    async with anyio.create_task_group() as tg:

        async def waiting() -> None:
            await client.call_tool("wait_forever", {}, progress_callback=on_wait)

        tg.start_soon(waiting)
        await started.wait()
        tg.cancel_scope.cancel()
    steps.append(("after cancel", await outcome(lambda: client.call_tool("echo", {"text": "still here"}))))
    return steps


@asynccontextmanager
async def direct(mode: str, agent: Agent) -> AsyncIterator[Client]:
    command = probe(mode)
    params = StdioServerParameters(command=command[0], args=command[1:])
    async with Client(params, mode=mode, **agent.options()) as client:  # type: ignore[arg-type]
        yield client


@asynccontextmanager
async def through(gateway: Gateway, token: str, mode: str, agent: Agent) -> AsyncIterator[Client]:
    url = f"{gateway.base_url}/servers/probe/mcp"
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60) as http,
        Client(streamable_http_client(url, http_client=http), mode=mode, **agent.options()) as client,  # type: ignore[arg-type]
    ):
        yield client


@asynccontextmanager
async def gateways(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str = "legacy"
) -> AsyncIterator[dict[str, tuple[Gateway, str]]]:
    """The SDK-path gateway and the relay gateway, each with an agent token."""
    served: dict[str, tuple[Gateway, str]] = {}
    command = probe(mode)
    async with AsyncExitStack() as stack:
        for name, relay in (("sdk", "0"), ("relay", "1")):
            config = write_config(tmp_path / name, {"probe": {"command": command[0], "args": command[1:]}})
            gateway = Gateway(load_config(config), checks=[ServerAccessCheck(), DenyForbidden()])
            monkeypatch.setenv(RELAY_ENV, relay)  # read as the gateway starts serving
            await stack.enter_async_context(serving(gateway))
            assert (gateway._endpoints["probe"].relay is not None) is (relay == "1")
            assert gateway.tokens is not None
            _, token = gateway.tokens.create("differ")
            served[name] = (gateway, token)
        yield served


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_the_relay_shows_the_agent_what_the_sdk_path_and_the_server_show(tmp_path, monkeypatch, mode):
    audited: dict[str, list[Any]] = {}
    with anyio.fail_after(120):
        seen: dict[str, tuple[Steps, Agent]] = {}
        agent = Agent()
        async with direct(mode, agent) as client:
            seen["direct"] = (await script(client, agent, mode), agent)
        async with gateways(tmp_path, monkeypatch, mode) as served:
            for name, (gateway, token) in served.items():
                agent = Agent()
                async with through(gateway, token, mode, agent) as client:
                    seen[name] = (await script(client, agent, mode), agent)
                audited[name] = await audit_of(gateway)
    assert audited["relay"] == audited["sdk"]
    assert ("tools/call", "wait_forever", "error", None, "cancelled", None, None) in audited["relay"]
    differences = []
    for left, right in (("direct", "sdk"), ("direct", "relay"), ("sdk", "relay")):
        for (step, one), (_, other) in zip(seen[left][0], seen[right][0], strict=True):
            if one != other:
                differences.append((left, right, step, one, other))
        for what in ("sampled", "logs"):
            if getattr(seen[left][1], what) != getattr(seen[right][1], what):
                differences.append((left, right, what, getattr(seen[left][1], what), getattr(seen[right][1], what)))
    assert differences == [], "\n".join(map(repr, differences))


async def test_legacy_sse_through_the_relay_shows_what_the_sdk_path_shows(tmp_path, monkeypatch):
    """`/servers/probe/sse` (legacy HTTP+SSE): the same session, and audit, on both paths."""
    seen: dict[str, tuple[Steps, Agent]] = {}
    audited: dict[str, list[Any]] = {}
    with anyio.fail_after(120):
        async with gateways(tmp_path, monkeypatch) as served:
            for name, (gateway, token) in served.items():
                agent = Agent()
                transport = sse_client(
                    f"{gateway.base_url}/servers/probe/sse", headers={"Authorization": f"Bearer {token}"}
                )
                async with Client(transport, mode="legacy", **agent.options()) as client:  # type: ignore[arg-type]
                    seen[name] = (await script(client, agent, "legacy"), agent)
                audited[name] = await audit_of(gateway)
    assert audited["relay"] == audited["sdk"]
    assert ("tools/call", "echo", "{'text': 'hi'}", "sse") in audited["relay"]
    differences = [
        (step, one, other)
        for (step, one), (_, other) in zip(*(seen[n][0] for n in ("sdk", "relay")), strict=True)
        if one != other
    ]
    for what in ("sampled", "logs"):
        if getattr(seen["sdk"][1], what) != getattr(seen["relay"][1], what):
            differences.append((what, getattr(seen["sdk"][1], what), getattr(seen["relay"][1], what)))
    assert differences == [], "\n".join(map(repr, differences))


async def test_denials_and_concurrent_agents_match_through_the_relay(tmp_path, monkeypatch):
    """A denied call, two agents calling with progress at once: the same through both paths, and audited the same."""
    results: dict[str, Any] = {}
    with anyio.fail_after(120):
        async with gateways(tmp_path, monkeypatch) as served:
            for name, (gateway, token) in served.items():
                agents = [Agent(), Agent()]
                got: dict[int, Any] = {}
                async with (
                    through(gateway, token, "legacy", agents[0]) as one,
                    through(gateway, token, "legacy", agents[1]) as two,
                    anyio.create_task_group() as tg,
                ):

                    async def run(index: int, client: Client, got: dict[int, Any] = got) -> None:
                        seen: list[Any] = []

                        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
                            seen.append((progress, total, message))

                        counted = await client.call_tool("count", {"steps": 2 + index}, progress_callback=on_progress)
                        denied = await outcome(lambda: client.call_tool("echo", {"text": "forbidden"}))
                        got[index] = (shape(counted), seen, denied)

                    tg.start_soon(run, 0, one)
                    tg.start_soon(run, 1, two)
                results[name] = (got, await audit_of(gateway))
    assert results["relay"][0] == results["sdk"][0]
    assert set(results["relay"][1]) ^ set(results["sdk"][1]) == set()
    assert results["relay"][1] == results["sdk"][1]
    got, completed = results["relay"]
    assert got[0][2][1]["isError"] is True
    assert "forbidden text" in str(got[0][2][1])
    assert sum(1 for c in completed if c[2] == "denied") == 2


async def audit_of(gateway: Gateway) -> list[Any]:
    """The `call.completed` records of the gateway's agent requests, in a comparable form (sorted)."""
    await gateway.audit.flush()
    query = EventQuery(types=("call.requested", "call.completed"))
    events = [event_record(decode_row(row)) for row in gateway.audit.rows(query, newest_first=False)]
    requested = sorted(
        (
            (e["method"], e["tool"], str(e.get("arguments")), e["transport"])
            for e in events
            if e["type"] == "call.requested"
        ),
        key=str,
    )
    completed = sorted(
        (
            (e["method"], e["tool"], e["outcome"], e["rule"], e["error"], e["is_error"], e.get("result_size"))
            for e in events
            if e["type"] == "call.completed"
        ),
        key=str,
    )
    return [*completed, *requested]


ACCEPT_BOTH = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}},
}
MODERN_META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientCapabilities": {},
}
MODERN_HEADERS = {**ACCEPT_BOTH, "MCP-Protocol-Version": "2026-07-28"}

# (label, needs a session, extra headers, body): raw HTTP the agent side may send, well-formed or not.
RAW_CASES: list[tuple[str, bool, dict[str, str], Any]] = [
    ("no session, not initialize", False, ACCEPT_BOTH, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
    (
        "unknown session",
        False,
        {**ACCEPT_BOTH, "Mcp-Session-Id": "nope"},
        {"jsonrpc": "2.0", "id": 2, "method": "ping"},
    ),
    ("no accept", True, {"Content-Type": "application/json"}, {"jsonrpc": "2.0", "id": 2, "method": "ping"}),
    ("json only accept", True, {"Accept": "application/json", "Content-Type": "application/json"}, INIT),
    ("wrong version field", True, ACCEPT_BOTH, {"jsonrpc": "1.0", "id": 2, "method": "ping"}),
    ("params not an object", True, ACCEPT_BOTH, {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": [1]}),
    ("id is a float", True, ACCEPT_BOTH, {"jsonrpc": "2.0", "id": 2.5, "method": "ping"}),
    ("not an object", True, ACCEPT_BOTH, "hello"),
    ("unknown method", True, ACCEPT_BOTH, {"jsonrpc": "2.0", "id": 2, "method": "no/such"}),
    ("tools/call without a name", True, ACCEPT_BOTH, {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {}}),
    ("ping", True, ACCEPT_BOTH, {"jsonrpc": "2.0", "id": 2, "method": "ping"}),
    ("notification", True, ACCEPT_BOTH, {"jsonrpc": "2.0", "method": "notifications/initialized"}),
    ("stray response", True, ACCEPT_BOTH, {"jsonrpc": "2.0", "id": 99, "result": {}}),
    ("2026 without envelope", False, MODERN_HEADERS, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
    (
        "2026 header mismatch",
        False,
        {**MODERN_HEADERS, "Mcp-Method": "prompts/list"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {"_meta": MODERN_META}},
    ),
    (
        "2026 tools/list",
        False,
        {**MODERN_HEADERS, "Mcp-Method": "tools/list"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {"_meta": MODERN_META}},
    ),
    (
        "2026 unknown tool",
        False,
        {**MODERN_HEADERS, "Mcp-Method": "tools/call", "Mcp-Name": "missing"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "missing", "_meta": MODERN_META}},
    ),
]


def answer_of(response: httpx2.Response) -> tuple[int, Any]:
    """Status and JSON-RPC answer (from a JSON body or the last SSE event); error messages left out."""
    text = response.text
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        data = [line[5:].strip() for line in text.splitlines() if line.startswith("data:")]
        text = data[-1] if data else ""
    if not text:
        return response.status_code, None
    try:
        body = json.loads(text)
    except ValueError:
        return response.status_code, "not json"
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        body = {**body, "error": {"code": body["error"].get("code")}}
    if isinstance(body, dict) and isinstance(body.get("result"), dict):
        body = {**body, "result": sorted(body["result"])}
    return response.status_code, body


async def test_raw_requests_get_the_answers_the_sdk_path_gives(tmp_path, monkeypatch):
    """Hostile and odd HTTP, byte for byte the same statuses and JSON-RPC error codes through the relay."""
    answers: dict[str, list[Any]] = {}
    audited: dict[str, list[Any]] = {}
    with anyio.fail_after(120):
        async with gateways(tmp_path, monkeypatch) as served:
            for name, (gateway, token) in served.items():
                url = f"{gateway.base_url}/servers/probe/mcp"
                auth = {"Authorization": f"Bearer {token}"}
                async with httpx2.AsyncClient(headers=auth, timeout=30) as http:
                    opened = await http.post(url, json=INIT, headers=ACCEPT_BOTH)
                    session = opened.headers["mcp-session-id"]
                    got = []
                    for number, (label, with_session, headers, body) in enumerate(RAW_CASES, start=10):
                        if isinstance(body, dict) and body.get("id") == 2:
                            # A fresh id each: the SDK path forgets an id a moment after answering it.
                            body = {**body, "id": number}
                        extra = {**headers, "Mcp-Session-Id": session} if with_session else headers
                        response = await http.post(url, content=json.dumps(body), headers=extra)
                        got.append((label, *answer_of(response)))
                    get = await http.get(url, headers={"Accept": "text/plain", "Mcp-Session-Id": session})
                    put = await http.put(url, headers={"Mcp-Session-Id": session})
                    deleted = await http.delete(url, headers={"Mcp-Session-Id": session})
                    after = await http.post(
                        url,
                        json={"jsonrpc": "2.0", "id": 5, "method": "ping"},
                        headers={**ACCEPT_BOTH, "Mcp-Session-Id": session},
                    )
                    got += [("GET not accepting SSE", get.status_code), ("PUT", put.status_code)]
                    got += [("DELETE", deleted.status_code), ("after DELETE", after.status_code)]
                answers[name] = got
                audited[name] = await audit_of(gateway)
    differences = [(sdk, relay) for sdk, relay in zip(answers["sdk"], answers["relay"], strict=True) if sdk != relay]
    assert differences == [], "\n".join(map(repr, differences))
    assert audited["relay"] == audited["sdk"]  # refusals recorded alike (malformed params too)

"""The aggregate endpoint `/mcp` on the relay against the reference: the same scripted sessions
through the SDK path (`BASTION_RELAY=0`) and through the relay (`BASTION_RELAY=1`).

Behind `/mcp`: two probes (`alpha`, and `beta` with a renamed tool, a hidden one and a new
description), a server whose tool list comes in pages and grows (`pages`), and a probe the
agent's token does not reach (`secret`). What the agent sees (lists, results, errors with their
messages, progress, log lines, server-to-client requests, list-changed notices) and what the
audit log says (the real server and tool of each call, the endpoint) must be the same; hostile
names and malformed requests get the same errors.
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
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

from bastion.audit.chain import decode_row
from bastion.audit.export import event_record
from bastion.audit.query import EventQuery
from bastion.config import load_config
from bastion.front.http_app import AGGREGATE_NAME
from bastion.gateway.assembly import open_audit
from bastion.gateway.gateway import Gateway
from bastion.guard.server_access import ServerAccessCheck
from bastion.relay import RELAY_ENV
from bastion.relay.aggregate import AggregateRelay
from tests.e2e.conftest import BASTION, SERVERS_DIR, write_config
from tests.e2e.inprocess import serving
from tests.e2e.test_relay_differential import (
    ACCEPT_BOTH,
    INIT,
    MODERN_HEADERS,
    MODERN_META,
    RAW_CASES,
    Agent,
    DenyForbidden,
    Steps,
    answer_of,
    outcome,
    probe,
)
from tests.e2e.test_relay_stdio_differential import wrap_env

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.e2e,
    pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning"),
]

PAGING = [sys.executable, str(SERVERS_DIR / "paging_probe_server.py")]
REACHED = ("alpha", "beta", "pages")
VIRTUAL = {"kit": {"tools": ["alpha__e*", "say"]}}
"""A virtual server: a tool set at `/servers/kit/mcp`, which the token reaches."""


def servers(mode: str) -> dict[str, Any]:
    command = probe(mode)
    one = {"command": command[0], "args": command[1:]}
    beta = {
        **one,
        "tools": {
            "echo": {"expose_as": "say", "description": "Says it back."},
            "fail": {"hidden": True},
        },
    }
    return {
        "alpha": one,
        "beta": beta,
        "pages": {"command": PAGING[0], "args": PAGING[1:]},
        "secret": one,
    }


class Watcher(Agent):
    """An agent that also notes the list-changed notices it is sent."""

    def __init__(self) -> None:
        super().__init__()
        self.changed = anyio.Event()
        self.notices: list[str] = []

    async def on_message(self, message: Any) -> None:
        method = getattr(getattr(message, "root", message), "method", None)
        if isinstance(method, str) and method.endswith("/list_changed"):
            self.notices.append(method)
            self.changed.set()

    def options(self) -> dict[str, Any]:
        return {**super().options(), "message_handler": self.on_message}


@asynccontextmanager
async def gateways(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str) -> AsyncIterator[dict[str, Any]]:
    """The SDK-path gateway and the relay gateway, each with a token for `REACHED` only."""
    served: dict[str, tuple[Gateway, str]] = {}
    async with AsyncExitStack() as stack:
        for name, relay in (("sdk", "0"), ("relay", "1")):
            config = write_config(tmp_path / name, servers(mode), virtual_servers=VIRTUAL)
            gateway = Gateway(load_config(config), checks=[ServerAccessCheck(), DenyForbidden()])
            monkeypatch.setenv(RELAY_ENV, relay)  # read as the gateway starts serving
            await stack.enter_async_context(serving(gateway))
            endpoint = gateway._endpoints[AGGREGATE_NAME]
            assert isinstance(endpoint.relay.relay if endpoint.relay else None, AggregateRelay) is (relay == "1")
            assert gateway.tokens is not None
            _, token = gateway.tokens.create("differ", servers=[*REACHED, "kit"])
            served[name] = (gateway, token)
        yield served


@asynccontextmanager
async def through(gateway: Gateway, token: str, mode: str, agent: Agent, path: str = "/mcp") -> AsyncIterator[Client]:
    if path.endswith("/sse"):  # legacy HTTP+SSE
        headers = {"Authorization": f"Bearer {token}"}
        transport = sse_client(f"{gateway.base_url}{path}", headers=headers)
        async with Client(transport, mode=mode, **agent.options()) as client:  # type: ignore[arg-type]
            yield client
        return
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60) as http,
        Client(
            streamable_http_client(f"{gateway.base_url}{path}", http_client=http),
            mode=mode,  # type: ignore[arg-type]
            **agent.options(),
        ) as client,
    ):
        yield client


CALLS: list[tuple[str, str, dict[str, Any]]] = [
    ("echo", "alpha__echo", {"text": "hi"}),
    ("renamed", "say", {"text": "hi"}),
    ("renamed, prefixed", "beta__say", {"text": "hi"}),
    ("renamed away", "beta__echo", {"text": "hi"}),
    ("hidden", "beta__fail", {"reason": "nope"}),
    ("tool error", "alpha__fail", {"reason": "nope"}),
    ("denied", "alpha__echo", {"text": "forbidden"}),
    ("another server's", "secret__echo", {"text": "hi"}),
    ("no such server", "nowhere__echo", {"text": "hi"}),
    ("no such tool", "alpha__missing", {}),
    ("no prefix", "echo", {"text": "hi"}),
    ("empty prefix", "__echo", {"text": "hi"}),
    ("only a prefix", "alpha__", {}),
    ("odd characters", "alpha__ech\u00f6\n", {}),
    ("paged tool", "pages__mul", {"a": 2, "b": 3}),
]


async def script(client: Client, agent: Watcher, mode: str) -> Steps:
    steps: Steps = [("tools/list", await outcome(client.list_tools))]
    for label, name, arguments in CALLS:
        steps.append((label, await outcome(lambda n=name, a=arguments: client.call_tool(n, a))))  # type: ignore[misc]
    seen: list[Any] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    counted = await outcome(lambda: client.call_tool("alpha__count", {"steps": 3}, progress_callback=on_progress))
    steps += [("count", counted), ("progress", seen)]
    steps.append(("resources/list", await outcome(client.list_resources)))
    steps.append(("templates", await outcome(client.list_resource_templates)))
    steps.append(("read", await outcome(lambda: client.read_resource("probe://note"))))
    steps.append(("read missing", await outcome(lambda: client.read_resource("probe://missing"))))
    steps.append(("prompts/list", await outcome(client.list_prompts)))
    for name in ("alpha__greet", "beta__greet", "secret__greet", "greet", "alpha__nothing"):
        steps.append((name, await outcome(lambda n=name: client.get_prompt(n, {"name": "Ada"}))))  # type: ignore[misc]
    ref = types.PromptReference(type="ref/prompt", name="alpha__greet")
    steps.append(("complete", await outcome(lambda: client.complete(ref, {"name": "name", "value": "A"}))))
    steps.append(("subscribe", await outcome(lambda: client.subscribe_resource("probe://note"))))
    if mode == "legacy":
        steps.append(("setLevel", await outcome(lambda: client.set_logging_level("debug"))))
        steps.append(("shout", await outcome(lambda: client.call_tool("alpha__shout", {"text": "careful"}))))
        steps.append(("sampling", await outcome(lambda: client.call_tool("beta__ask_model", {"question": "why?"}))))
        steps.append(("roots", await outcome(lambda: client.call_tool("alpha__list_roots", {}))))
        steps.append(("grow", await outcome(lambda: client.call_tool("pages__grow", {}))))
        with anyio.fail_after(20):
            await agent.changed.wait()
        steps.append(("notices", sorted(set(agent.notices))))
        steps.append(("tools/list grown", await outcome(client.list_tools)))
    steps.append(("ping", await outcome(client.send_ping)))
    started = anyio.Event()

    async def on_wait(progress: float, total: float | None, message: str | None) -> None:
        started.set()

    async with anyio.create_task_group() as tg:

        async def waiting() -> None:
            await client.call_tool("alpha__wait_forever", {}, progress_callback=on_wait)

        tg.start_soon(waiting)
        await started.wait()
        tg.cancel_scope.cancel()
    steps.append(("after cancel", await outcome(lambda: client.call_tool("say", {"text": "still here"}))))
    return steps


async def audit_of(gateway: Gateway) -> list[Any]:
    """The gateway's `call.requested` and `call.completed` records, comparable across paths (sorted)."""
    await gateway.audit.flush()
    return comparable(gateway.audit.rows(EventQuery(types=("call.requested", "call.completed")), newest_first=False))


def comparable(rows: Any) -> list[Any]:
    events = [event_record(decode_row(row)) for row in rows]
    kept = ("type", "server", "tool", "method", "endpoint", "transport", "arguments", "outcome", "rule", "error")
    more = ("is_error", "result_size", "agent")
    return sorted((json.dumps({k: e.get(k) for k in (*kept, *more)}, sort_keys=True) for e in events), key=str)


@pytest.mark.parametrize(("mode", "path"), [("legacy", "/mcp"), ("2026-07-28", "/mcp"), ("legacy", "/sse")])
async def test_the_aggregate_on_the_relay_shows_what_the_sdk_path_shows(tmp_path, monkeypatch, mode, path):
    seen: dict[str, tuple[Steps, Watcher]] = {}
    audited: dict[str, list[Any]] = {}
    with anyio.fail_after(180):
        async with gateways(tmp_path, monkeypatch, mode) as served:
            for name, (gateway, token) in served.items():
                agent = Watcher()
                async with through(gateway, token, mode, agent, path) as client:
                    seen[name] = (await script(client, agent, mode), agent)
                audited[name] = await audit_of(gateway)
    differences = [
        (step, sdk, relay)
        for (step, sdk), (_, relay) in zip(seen["sdk"][0], seen["relay"][0], strict=True)
        if sdk != relay
    ]
    for what in ("sampled", "logs"):
        if getattr(seen["sdk"][1], what) != getattr(seen["relay"][1], what):
            differences.append((what, getattr(seen["sdk"][1], what), getattr(seen["relay"][1], what)))
    assert differences == [], "\n".join(map(repr, differences))
    only = [("sdk", r) for r in audited["sdk"] if r not in audited["relay"]]
    only += [("relay", r) for r in audited["relay"] if r not in audited["sdk"]]
    assert only == [], "\n".join(map(repr, only))
    assert audited["relay"] == audited["sdk"]
    steps = dict(seen["relay"][0])
    assert steps["echo"][0] == "ok"
    assert steps["another server's"][0] == "error"
    assert "secret" not in json.dumps(steps["tools/list"])
    records = [json.loads(r) for r in audited["relay"]]
    said = [r for r in records if r["tool"] == "echo" and r["server"] == "beta" and r["type"] == "call.completed"]
    assert said
    assert all(r["endpoint"] == "aggregate" for r in said)
    if mode == "legacy":
        assert "pages__grown4" in json.dumps(steps["tools/list grown"])
        assert steps["notices"] == ["notifications/tools/list_changed"]
        assert seen["relay"][1].sampled == ["why?"]


async def test_a_virtual_server_on_the_relay_shows_what_the_sdk_path_shows(tmp_path, monkeypatch):
    """`/servers/kit/mcp`, a tool set: the same list, calls, refusals and audit on both paths."""
    seen: dict[str, Steps] = {}
    audited: dict[str, list[Any]] = {}
    with anyio.fail_after(120):
        async with gateways(tmp_path, monkeypatch, "legacy") as served:
            for name, (gateway, token) in served.items():
                assert (gateway._endpoints["kit"].relay is not None) is (name == "relay")
                async with through(gateway, token, "legacy", Agent(), "/servers/kit/mcp") as client:
                    steps: Steps = [("tools/list", await outcome(client.list_tools))]
                    for tool in ("alpha__echo", "say", "alpha__fail", "beta__say", "secret__echo", "kit__echo"):
                        steps.append((tool, await outcome(lambda t=tool: client.call_tool(t, {"text": "hi"}))))  # type: ignore[misc]
                    steps.append(("prompts/list", await outcome(client.list_prompts)))
                    steps.append(("read", await outcome(lambda: client.read_resource("probe://note"))))
                    seen[name] = steps
                audited[name] = await audit_of(gateway)
    differences = [
        (step, sdk, relay) for (step, sdk), (_, relay) in zip(seen["sdk"], seen["relay"], strict=True) if sdk != relay
    ]
    assert differences == [], "\n".join(map(repr, differences))
    assert audited["relay"] == audited["sdk"]
    steps = dict(seen["relay"])
    assert steps["alpha__echo"][0] == "ok"
    assert steps["secret__echo"][0] == "error"
    assert any('"endpoint": "virtual:kit"' in record for record in audited["relay"])


AGGREGATE_RAW: list[tuple[str, bool, dict[str, str], Any]] = [
    *RAW_CASES,
    (
        "unreachable server's tool",
        True,
        ACCEPT_BOTH,
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "secret__echo", "arguments": {}}},
    ),
    (
        "name not a string",
        True,
        ACCEPT_BOTH,
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": 7}},
    ),
    (
        "arguments not an object",
        True,
        ACCEPT_BOTH,
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "alpha__echo", "arguments": [1]}},
    ),
    ("read without uri", True, ACCEPT_BOTH, {"jsonrpc": "2.0", "id": 2, "method": "resources/read", "params": {}}),
    (
        "unreachable server's prompt",
        True,
        ACCEPT_BOTH,
        {"jsonrpc": "2.0", "id": 2, "method": "prompts/get", "params": {"name": "secret__greet"}},
    ),
    ("completion here", True, ACCEPT_BOTH, {"jsonrpc": "2.0", "id": 2, "method": "completion/complete"}),
    (
        "2026 unreachable server's tool",
        False,
        {**MODERN_HEADERS, "Mcp-Method": "tools/call", "Mcp-Name": "secret__echo"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "secret__echo", "_meta": MODERN_META}},
    ),
    (
        "2026 subscribe (not served here)",
        False,
        {**MODERN_HEADERS, "Mcp-Method": "resources/subscribe", "Mcp-Name": "probe://note"},
        {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "resources/subscribe",
            "params": {"uri": "probe://note", "_meta": MODERN_META},
        },
    ),
]


async def test_raw_requests_to_the_aggregate_get_the_answers_the_sdk_path_gives(tmp_path, monkeypatch):
    """Hostile and odd HTTP at `/mcp`: the same statuses and JSON-RPC answers (error codes) through the relay."""
    answers: dict[str, list[Any]] = {}
    audited: dict[str, list[Any]] = {}
    with anyio.fail_after(120):
        async with gateways(tmp_path, monkeypatch, "legacy") as served:
            for name, (gateway, token) in served.items():
                url = f"{gateway.base_url}/mcp"
                async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
                    opened = await http.post(url, json=INIT, headers=ACCEPT_BOTH)
                    session = opened.headers["mcp-session-id"]
                    got: list[Any] = [("initialize", *answer_of(opened))]
                    for number, (label, with_session, headers, body) in enumerate(AGGREGATE_RAW, start=10):
                        if isinstance(body, dict) and body.get("id") == 2:
                            body = {**body, "id": number}
                        extra = {**headers, "Mcp-Session-Id": session} if with_session else headers
                        response = await http.post(url, content=json.dumps(body), headers=extra)
                        status, answer = answer_of(response)
                        # JSON-RPC answers word for word; the transport's own 4xx (a pydantic dump on
                        # the SDK path) by status and code only, as at /servers/<name>/mcp.
                        got.append((label, status, answer, _message(response) if status == 200 else None))
                    deleted = await http.delete(url, headers={"Mcp-Session-Id": session})
                    got.append(("DELETE", deleted.status_code))
                answers[name] = got
                audited[name] = await audit_of(gateway)
    differences = [(sdk, relay) for sdk, relay in zip(answers["sdk"], answers["relay"], strict=True) if sdk != relay]
    assert differences == [], "\n".join(map(repr, differences))
    only = [("sdk", r) for r in audited["sdk"] if r not in audited["relay"]]
    only += [("relay", r) for r in audited["relay"] if r not in audited["sdk"]]
    assert only == [], "\n".join(map(repr, only))
    assert audited["relay"] == audited["sdk"]


def _message(response: httpx2.Response) -> Any:
    """The answer's error message, or its tool result's text (what the agent reads of a refusal)."""
    text = response.text
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        data = [line[5:].strip() for line in text.splitlines() if line.startswith("data:")]
        text = data[-1] if data else ""
    try:
        body = json.loads(text)
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    if isinstance(body.get("error"), dict):
        return body["error"].get("message")
    result = body.get("result")
    return result.get("content") if isinstance(result, dict) else None


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_wrap_all_on_the_relay_shows_what_the_sdk_path_shows(tmp_path, mode):
    """`bastion wrap --all` (`/mcp` over stdio, a real subprocess): the same session and audit on both paths."""
    seen: dict[str, tuple[Steps, Watcher]] = {}
    audited: dict[str, list[Any]] = {}
    with anyio.fail_after(180):
        for name, relay in (("sdk", "0"), ("relay", "1")):
            path = write_config(tmp_path / name, servers(mode))
            command = [BASTION, "wrap", "--all", "--config", str(path)]
            params = StdioServerParameters(command=command[0], args=command[1:], env=wrap_env(tmp_path, relay))
            agent = Watcher()
            async with Client(params, mode=mode, **agent.options()) as client:  # type: ignore[arg-type]
                seen[name] = (await script(client, agent, mode), agent)
            store = open_audit(load_config(path))
            await store.open()
            try:
                audited[name] = comparable(
                    store.rows(EventQuery(types=("call.requested", "call.completed")), newest_first=False)
                )
            finally:
                await store.close()
    differences = [
        (step, sdk, relay)
        for (step, sdk), (_, relay) in zip(seen["sdk"][0], seen["relay"][0], strict=True)
        if sdk != relay
    ]
    for what in ("sampled", "logs"):
        if getattr(seen["sdk"][1], what) != getattr(seen["relay"][1], what):
            differences.append((what, getattr(seen["sdk"][1], what), getattr(seen["relay"][1], what)))
    assert differences == [], "\n".join(map(repr, differences))
    only = [("sdk", r) for r in audited["sdk"] if r not in audited["relay"]]
    only += [("relay", r) for r in audited["relay"] if r not in audited["sdk"]]
    assert only == [], "\n".join(map(repr, only))
    assert audited["relay"] == audited["sdk"]
    assert any('"transport": "stdio"' in record for record in audited["relay"])

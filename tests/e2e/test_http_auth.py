"""E2E: who gets through the HTTP front door, and what they can reach once in.

Requirements covered (real `bastion up`, raw HTTP with httpx2, real SDK clients):
- a missing, malformed, unknown, revoked or expired credential gets 401 with an RFC 9728
  challenge on every server path; the metadata it points at names the server's /mcp URL;
- a token limited to some servers gets 403 elsewhere and works where it is allowed;
- the agent's credential never reaches the upstream (URL upstreams get their configured headers);
- a session is bound to the credential that opened it (Streamable HTTP and legacy SSE);
- an unknown server is 404 for an authenticated caller and 401 for anyone else;
- /healthz and /readyz answer.
"""

from __future__ import annotations

import json
import re
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
import uvicorn
from mcp.server.mcpserver import Context, MCPServer

from tests.e2e.clients import connect
from tests.e2e.conftest import VENV_BIN, RunningGateway, start_gateway, write_config

MCP_HEADERS = {
    "Accept": "application/json, text/event-stream",
    "Content-Type": "application/json",
    "mcp-protocol-version": "2025-11-25",
}
INITIALIZE: dict[str, Any] = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "e2e", "version": "1"}},
}
REVOCATION_DEADLINE = 1.5
"""Seconds a revocation may take to reach the gateway (the promise is "within a second")."""


def unique_agent(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def send(gateway: RunningGateway, method: str, path: str, authorization: str | None, **kwargs: Any) -> httpx2.Response:
    """One raw request, read whole unless it is a GET answered with an event stream (which never ends)."""
    headers = {**MCP_HEADERS, **kwargs.pop("headers", {})}
    if method == "GET":
        kwargs.pop("json", None)
    if authorization is not None:
        headers["Authorization"] = authorization
    with (
        httpx2.Client(timeout=30) as http,
        http.stream(method, f"{gateway.base_url}{path}", headers=headers, **kwargs) as response,
    ):
        if method != "GET" or not response.headers.get("content-type", "").startswith("text/event-stream"):
            response.read()
        return response


def open_session(gateway: RunningGateway, token: str) -> str:
    """Initialize a Streamable HTTP session on `time` with `token`; its session id."""
    opened = send(gateway, "POST", "/servers/time/mcp", f"Bearer {token}", json=INITIALIZE)
    assert opened.status_code == 200, opened.text
    session_id = opened.headers["mcp-session-id"]
    note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    initialized = send(gateway, "POST", "/servers/time/mcp", f"Bearer {token}", json=note, headers=_sid(session_id))
    assert initialized.status_code == 202, initialized.text
    return session_id


def _sid(session_id: str) -> dict[str, str]:
    return {"mcp-session-id": session_id}


def session_request(
    gateway: RunningGateway, session_id: str, token: str, method: str, request_id: int = 2
) -> httpx2.Response:
    """POST a request in a session and read its (single-event) answer."""
    body = {"jsonrpc": "2.0", "id": request_id, "method": method}
    headers = {**MCP_HEADERS, "Authorization": f"Bearer {token}", **_sid(session_id)}
    response = httpx2.post(gateway.url("time"), headers=headers, json=body, timeout=30)
    return response


def sse_payload(response: httpx2.Response) -> dict[str, Any]:
    """The JSON-RPC message of a one-event SSE answer (or of a plain JSON answer)."""
    if not response.headers["content-type"].startswith("text/event-stream"):
        return response.json()
    data = [line.removeprefix("data:").strip() for line in response.text.splitlines() if line.startswith("data:")]
    assert len(data) == 1, response.text
    return json.loads(data[0])


def metadata_url(gateway: RunningGateway, server: str) -> str:
    return f"{gateway.base_url}/.well-known/oauth-protected-resource/servers/{server}/mcp"


def assert_challenge(response: httpx2.Response, gateway: RunningGateway, server: str) -> None:
    """401 with an RFC 6750 Bearer challenge whose resource_metadata points at the server's metadata."""
    assert response.status_code == 401, f"expected 401, got {response.status_code}: {response.text}"
    challenge = response.headers.get("www-authenticate", "")
    assert challenge.startswith("Bearer "), challenge
    found = re.search(r'resource_metadata="([^"]*)"', challenge)
    assert found is not None, f"no resource_metadata in {challenge!r}"
    assert found[1] == metadata_url(gateway, server)
    assert response.json()["error"] == "invalid_token"


# Each endpoint as (method, path suffix): the three ways into a server.
ENDPOINTS = [
    pytest.param("POST", "mcp", id="mcp"),
    pytest.param("GET", "sse", id="sse"),
    pytest.param("POST", "messages/", id="sse-messages"),
]

BAD_CREDENTIALS: list[Any] = [
    pytest.param(lambda gw: None, id="missing"),
    pytest.param(lambda gw: "", id="empty-header"),
    pytest.param(lambda gw: "Basic dXNlcjpwYXNzd29yZA==", id="basic-scheme"),
    pytest.param(lambda gw: "Bearer", id="bearer-without-token"),
    pytest.param(lambda gw: "Bearer undefined", id="bearer-undefined"),
    pytest.param(lambda gw: f"Token {gw.token}", id="valid-token-wrong-scheme"),
    pytest.param(lambda gw: f"Bearer {gw.token} {gw.token}", id="two-tokens"),
    pytest.param(lambda gw: f"Bearer {gw.token}x", id="valid-token-with-extra-char"),
    pytest.param(lambda gw: f"Bearer bst_{secrets.token_hex(4)}_{secrets.token_urlsafe(32)}", id="random-bst-token"),
    pytest.param(
        lambda gw: f"Bearer {gw.token.rsplit('_', 1)[0]}_{secrets.token_urlsafe(32)}", id="right-id-wrong-secret"
    ),
    pytest.param(lambda gw: "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl", id="jwt-with-no-jwt-config"),
]


@pytest.mark.parametrize(("method", "suffix"), ENDPOINTS)
@pytest.mark.parametrize("make_header", BAD_CREDENTIALS)
def test_bad_credential_gets_401_with_resource_metadata(
    gateway: RunningGateway, make_header: Callable[[RunningGateway], str | None], method: str, suffix: str
) -> None:
    body = json.dumps(INITIALIZE) if method == "POST" else None
    response = send(gateway, method, f"/servers/time/{suffix}", make_header(gateway), content=body)
    assert_challenge(response, gateway, "time")


@pytest.mark.parametrize(("method", "suffix"), ENDPOINTS)
def test_token_in_the_query_string_is_not_a_credential(gateway: RunningGateway, method: str, suffix: str) -> None:
    path = f"/servers/time/{suffix}?access_token={gateway.token}"
    assert_challenge(send(gateway, method, path, None, json=INITIALIZE), gateway, "time")


@pytest.mark.parametrize("server", ["time", "git"])
def test_challenge_leads_to_rfc9728_metadata_naming_the_mcp_url(gateway: RunningGateway, server: str) -> None:
    refused = send(gateway, "GET", f"/servers/{server}/sse", None)
    assert_challenge(refused, gateway, server)
    link = re.search(r'resource_metadata="([^"]*)"', refused.headers["www-authenticate"])
    assert link is not None
    document = httpx2.get(link[1], timeout=10)
    assert document.status_code == 200, document.text
    assert document.headers["content-type"].startswith("application/json")
    metadata = document.json()
    assert metadata["resource"] == gateway.url(server)
    assert metadata["bearer_methods_supported"] == ["header"]


def test_metadata_does_not_reveal_which_servers_exist(gateway: RunningGateway) -> None:
    known = httpx2.get(metadata_url(gateway, "time"), timeout=10)
    unknown = httpx2.get(metadata_url(gateway, "no-such-server"), timeout=10)
    assert known.status_code == unknown.status_code == 200
    assert unknown.json()["resource"] == gateway.url("no-such-server")
    malformed = httpx2.get(metadata_url(gateway, "Not A Name"), timeout=10)
    assert malformed.status_code == 404, malformed.text


@pytest.mark.parametrize("how", ["by-id", "by-agent"])
def test_revoked_token_is_refused_within_a_second_even_in_an_open_session(gateway: RunningGateway, how: str) -> None:
    agent = unique_agent("revokee")
    token = gateway.create_token(agent)
    bystander = gateway.create_token(unique_agent("bystander"))
    session_id = open_session(gateway, token)
    before = session_request(gateway, session_id, token, "ping")
    assert before.status_code == 200, before.text

    token_id = token.split("_")[1]
    args = ("token", "revoke", token_id) if how == "by-id" else ("token", "revoke", "--agent", agent)
    revoked = gateway.cli(*args)
    assert revoked.returncode == 0, revoked.stderr

    deadline = time.monotonic() + REVOCATION_DEADLINE
    while (answer := session_request(gateway, session_id, token, "ping")).status_code != 401:
        assert answer.status_code == 200, answer.text
        assert time.monotonic() < deadline, f"revoked token still accepted {REVOCATION_DEADLINE} s after revoke"
        time.sleep(0.05)
    assert_challenge(answer, gateway, "time")
    for method, suffix in (("POST", "mcp"), ("GET", "sse"), ("POST", "messages/")):
        assert_challenge(send(gateway, method, f"/servers/time/{suffix}", f"Bearer {token}"), gateway, "time")
    assert open_session(gateway, bystander), "revoking one agent's token must not affect another agent"
    listed = gateway.cli("token", "list")
    assert re.search(rf"^{token_id}\s+{agent}\s+revoked\b", listed.stdout, re.MULTILINE), listed.stdout


def test_expired_token_is_refused_once_its_lifetime_is_over(gateway: RunningGateway) -> None:
    lifetime = 2.0
    created = time.time()
    token = gateway.create_token(unique_agent("shortlived"), expires=f"{lifetime:g}s")
    deadline = time.monotonic() + lifetime + REVOCATION_DEADLINE
    while (answer := send(gateway, "POST", "/servers/time/mcp", f"Bearer {token}", json=INITIALIZE)).status_code != 401:
        assert answer.status_code == 200, answer.text
        assert time.monotonic() < deadline, "expired token still accepted"
        time.sleep(0.05)
    assert time.time() >= created + lifetime, "token refused before its lifetime was over"
    assert_challenge(answer, gateway, "time")
    assert_challenge(send(gateway, "GET", "/servers/time/sse", f"Bearer {token}"), gateway, "time")
    listed = gateway.cli("token", "list")
    assert re.search(rf"^{token.split('_')[1]}\s+\S+\s+expired\b", listed.stdout, re.MULTILINE), listed.stdout


@pytest.mark.anyio
async def test_token_with_a_future_expiry_works(gateway: RunningGateway) -> None:
    token = gateway.create_token(unique_agent("longlived"), expires="1h")
    with anyio.fail_after(60):
        async with connect(gateway, "time", token=token) as client:
            result = await client.call_tool("get_current_time", {"timezone": "UTC"})
    assert not result.is_error, result


@pytest.mark.anyio
async def test_token_limited_to_time_is_forbidden_on_git_and_works_on_time(gateway: RunningGateway) -> None:
    token = gateway.create_token(unique_agent("time-only"), servers="time")
    for method, suffix in (("POST", "mcp"), ("GET", "sse"), ("POST", "messages/")):
        refused = send(gateway, method, f"/servers/git/{suffix}", f"Bearer {token}", json=INITIALIZE)
        assert refused.status_code == 403, f"{suffix}: {refused.status_code} {refused.text}"
        assert refused.json()["error"] == "insufficient_scope"
        assert "git" in refused.json()["error_description"]
    with anyio.fail_after(60):
        async with connect(gateway, "time", token=token) as client:
            result = await client.call_tool("get_current_time", {"timezone": "UTC"})
    assert not result.is_error, result
    assert '"timezone": "UTC"' in result.content[0].text


UNKNOWN_SERVER = [
    pytest.param(lambda gw: None, 401, id="unauthenticated"),
    pytest.param(lambda gw: f"Bearer bst_{secrets.token_hex(4)}_{secrets.token_urlsafe(32)}", 401, id="wrong-token"),
    pytest.param(lambda gw: f"Bearer {gw.token}", 404, id="authenticated"),
]


@pytest.mark.parametrize(("make_header", "status"), UNKNOWN_SERVER)
@pytest.mark.parametrize(("method", "suffix"), ENDPOINTS)
def test_unknown_server_is_404_only_for_an_authenticated_caller(
    gateway: RunningGateway, make_header: Callable[[RunningGateway], str | None], status: int, method: str, suffix: str
) -> None:
    response = send(gateway, method, f"/servers/no-such-server/{suffix}", make_header(gateway), json=INITIALIZE)
    if status == 401:
        assert_challenge(response, gateway, "no-such-server")
    else:
        assert response.status_code == 404, response.text
        assert response.json() == {"error": "not_found", "error_description": "no server named 'no-such-server'"}


@pytest.mark.parametrize(
    "other", [pytest.param("agent", id="another-agent"), pytest.param("token", id="same-agent-other-token")]
)
def test_streamable_http_session_is_bound_to_the_credential_that_opened_it(gateway: RunningGateway, other: str) -> None:
    owner = unique_agent("owner")
    token_a = gateway.create_token(owner)
    token_b = gateway.create_token(unique_agent("intruder") if other == "agent" else owner)
    session_id = open_session(gateway, token_a)

    hijack = session_request(gateway, session_id, token_b, "tools/list")
    assert hijack.status_code == 404, f"another credential was served in the session: {hijack.text}"
    assert hijack.json()["error"]["message"] == "Session not found"
    assert "tools" not in hijack.text
    for method in ("GET", "DELETE"):  # the session's event stream, and ending the session
        refused = send(gateway, method, "/servers/time/mcp", f"Bearer {token_b}", headers=_sid(session_id))
        assert refused.status_code == 404, f"{method} with another credential: {refused.status_code} {refused.text}"

    own = session_request(gateway, session_id, token_a, "tools/list", request_id=3)
    assert own.status_code == 200, own.text
    reply = sse_payload(own)
    assert reply["id"] == 3
    assert "get_current_time" in {tool["name"] for tool in reply["result"]["tools"]}


@pytest.mark.anyio
async def test_sse_session_is_bound_to_the_credential_that_opened_it(gateway: RunningGateway) -> None:
    token_a = gateway.create_token(unique_agent("sse-owner"))
    token_b = gateway.create_token(unique_agent("sse-intruder"))
    with anyio.fail_after(30):
        async with (
            httpx2.AsyncClient(base_url=gateway.base_url, timeout=30) as http,
            http.stream("GET", "/servers/time/sse", headers={"Authorization": f"Bearer {token_a}"}) as stream,
        ):
            assert stream.status_code == 200
            events = _sse_events(stream.aiter_lines())
            kind, endpoint = await anext(events)
            assert kind == "endpoint", (kind, endpoint)
            assert endpoint.startswith("/servers/time/messages/?session_id=")

            post_headers = {"Content-Type": "application/json"}
            hijack = await http.post(
                endpoint, json=INITIALIZE, headers={**post_headers, "Authorization": f"Bearer {token_b}"}
            )
            assert hijack.status_code == 404, f"another agent was served in the SSE session: {hijack.text}"

            own = await http.post(
                endpoint, json=INITIALIZE, headers={**post_headers, "Authorization": f"Bearer {token_a}"}
            )
            assert own.status_code == 202, own.text
            kind, data = await anext(events)
            reply = json.loads(data)
            assert (kind, reply["id"]) == ("message", 1), data
            assert reply["result"]["serverInfo"]["name"] == "mcp-time"


async def _sse_events(lines: Any) -> Any:
    """(event, data) pairs from an SSE line stream."""
    kind, data = "message", list[str]()
    async for line in lines:
        if line == "":
            if data:
                yield kind, "\n".join(data)
            kind, data = "message", list[str]()
        elif line.startswith("event:"):
            kind = line.removeprefix("event:").strip()
        elif line.startswith("data:"):
            data.append(line.removeprefix("data:").strip())


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_bearer_scheme_is_case_insensitive(gateway: RunningGateway, scheme: str) -> None:
    response = send(gateway, "POST", "/servers/time/mcp", f"{scheme} {gateway.token}", json=INITIALIZE)
    assert response.status_code == 200, response.text
    assert sse_payload(response)["result"]["serverInfo"]["name"] == "mcp-time"


def test_healthz_answers_without_credentials(gateway: RunningGateway) -> None:
    response = httpx2.get(f"{gateway.base_url}/healthz", timeout=10)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


# --- URL upstreams: the agent's credential stays at the front door -------------------------


def header_echo_server() -> MCPServer:
    """A real SDK server with one tool that reports the HTTP headers its request arrived with."""
    server = MCPServer("header-echo")

    @server.tool()
    def seen_headers(ctx: Context) -> str:
        """The request headers, as a JSON object."""
        return json.dumps(dict(ctx.headers or {}))

    return server


@contextmanager
def serve_in_thread(app: Any) -> Iterator[int]:
    """Serve an ASGI app with uvicorn on a thread; yields the port (listening before the thread starts)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


UPSTREAM_KEY = "abc-" + secrets.token_hex(8)


@pytest.fixture(scope="module")
def url_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    """A gateway whose upstreams are URL servers: one over Streamable HTTP, one over legacy SSE."""
    echo = header_echo_server()
    with serve_in_thread(echo.streamable_http_app()) as http_port, serve_in_thread(echo.sse_app()) as sse_port:
        servers = {
            "time": {"command": str(VENV_BIN / "mcp-server-time")},
            "echo-http": {"url": f"http://127.0.0.1:{http_port}/mcp", "headers": {"X-Upstream-Key": UPSTREAM_KEY}},
            "echo-sse": {
                "url": f"http://127.0.0.1:{sse_port}/sse",
                "transport": "sse",
                "headers": {"X-Upstream-Key": UPSTREAM_KEY},
            },
        }
        running = start_gateway(write_config(Path(tmp_path_factory.mktemp("url-gateway")), servers))
        try:
            yield running
        finally:
            running.stop()


@pytest.mark.anyio
@pytest.mark.parametrize(("front", "mode"), [("http", "legacy"), ("http", "2026-07-28"), ("sse", "legacy")])
@pytest.mark.parametrize("upstream", ["echo-http", "echo-sse"])
async def test_agent_token_is_never_forwarded_upstream(
    url_gateway: RunningGateway, upstream: str, front: str, mode: str
) -> None:
    token = url_gateway.create_token(unique_agent("forwarder"))
    with anyio.fail_after(60):
        async with connect(url_gateway, upstream, front=front, mode=mode, token=token) as client:
            result = await client.call_tool("seen_headers", {})
    assert not result.is_error, result
    seen: dict[str, str] = json.loads(result.content[0].text)
    assert seen.get("x-upstream-key") == UPSTREAM_KEY, f"configured header missing upstream: {seen}"
    secret = token.split("_", 2)[2]  # bst_<id>_<secret>; the secret itself may contain "_"
    leaked = {name: value for name, value in seen.items() if secret in value or token in value}
    assert not leaked, f"the agent's token reached the upstream in {sorted(leaked)}"
    assert "authorization" not in seen, f"an Authorization header reached the upstream: {seen['authorization']!r}"


def test_readyz_reports_every_upstream_up(url_gateway: RunningGateway) -> None:
    response = httpx2.get(f"{url_gateway.base_url}/readyz", headers=url_gateway.status_headers(), timeout=10)
    assert response.status_code == 200, response.text
    report = response.json()
    runtime = report.pop("runtime")
    assert report == {
        "ready": True,
        "audit_store": "writable",
        "servers": {"time": "up", "echo-http": "up", "echo-sse": "up"},
    }
    assert runtime["time"]["sandbox"] is True
    assert runtime["echo-http"] == {"sandbox": False, "limits": {}, "restarts": 0, "last_exit": None}

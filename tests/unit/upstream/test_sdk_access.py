"""Fails when an SDK upgrade moves what `bastion.upstream.sdk_access` reads past the public surface."""

from __future__ import annotations

import json
from typing import Any

import anyio
import httpx2
import pytest
from mcp.client.streamable_http import streamable_http_client
from mcp.server.connection import Connection
from mcp.server.context import ServerRequestContext
from mcp.server.session import ServerSession
from mcp.shared.message import SessionMessage
from mcp_types import JSONRPCNotification, JSONRPCRequest

from bastion.upstream.sdk_access import connection_of, parsed_endpoint, stream_within_origin


class _NoOutbound:
    async def send_raw_request(self, method, params, opts=None):
        raise AssertionError("unused")

    async def notify(self, method, params, opts=None):
        raise AssertionError("unused")


def test_connection_of_returns_the_session_connection():
    connection = Connection(_NoOutbound(), protocol_version="2025-11-25")
    session = ServerSession(_NoOutbound(), connection)  # type: ignore[arg-type]
    ctx = ServerRequestContext(session=session, lifespan_context={}, protocol_version="2025-11-25", method="ping")
    assert connection_of(ctx) is connection


@pytest.mark.anyio
async def test_a_parsed_endpoint_reaches_httpx2_as_parsed_and_addresses_the_same_url() -> None:
    url = "http://127.0.0.1:8123/servers/echo/mcp?x=1"
    seen: list[tuple[object, str, dict[str, object]]] = []

    def answer(request: httpx2.Request) -> httpx2.Response:
        body = json.loads(request.content)
        return httpx2.Response(200, json={"jsonrpc": "2.0", "id": body["id"], "result": {"ok": True}})

    class Recording(httpx2.AsyncClient):
        def build_request(self, method: str, url: Any, **kwargs: Any) -> httpx2.Request:
            request = super().build_request(method, url, **kwargs)
            seen.append((url, str(request.url), kwargs.get("json") or {}))
            return request

    endpoint = parsed_endpoint(url)
    assert isinstance(endpoint, httpx2.URL)
    assert str(endpoint) == url
    async with (
        Recording(transport=httpx2.MockTransport(answer)) as client,
        streamable_http_client(endpoint, http_client=client) as (read, write),
    ):
        request = JSONRPCRequest(jsonrpc="2.0", id=7, method="ping")
        await write.send(SessionMessage(request))
        with anyio.fail_after(5):
            reply = await read.receive()
    assert isinstance(reply, SessionMessage)
    assert reply.message.id == 7  # type: ignore[union-attr]
    assert len(seen) == 1
    assert seen[0][0] is endpoint  # handed to httpx2 as parsed, not re-parsed from text
    assert seen[0][1] == url


@pytest.mark.anyio
async def test_a_handshake_era_session_on_a_parsed_endpoint_streams_and_ends_on_the_same_url() -> None:
    """The listening GET and the closing DELETE of a session use the parsed endpoint too."""
    url = "http://127.0.0.1:8123/mcp"
    requests: list[tuple[str, str]] = []
    listening = anyio.Event()

    async def answer(request: httpx2.Request) -> httpx2.Response:
        requests.append((request.method, str(request.url)))
        if request.method == "GET":
            listening.set()
            return httpx2.Response(405)
        if request.method == "DELETE":
            return httpx2.Response(200)
        body = json.loads(request.content)
        if "id" not in body:
            return httpx2.Response(202)
        result = {"protocolVersion": "2025-11-25", "capabilities": {}, "serverInfo": {"name": "s", "version": "1"}}
        reply = {"jsonrpc": "2.0", "id": body["id"], "result": result}
        return httpx2.Response(200, json=reply, headers={"mcp-session-id": "s-1"})

    initialize = {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "c", "version": "1"},
    }
    async with (
        httpx2.AsyncClient(transport=httpx2.MockTransport(answer)) as client,
        streamable_http_client(parsed_endpoint(url), http_client=client) as (read, write),
    ):
        await write.send(SessionMessage(JSONRPCRequest(jsonrpc="2.0", id=1, method="initialize", params=initialize)))
        with anyio.fail_after(5):
            await read.receive()
        await write.send(SessionMessage(JSONRPCNotification(jsonrpc="2.0", method="notifications/initialized")))
        with anyio.fail_after(5):
            await listening.wait()
    assert sorted(method for method, _ in requests) == ["DELETE", "GET", "POST", "POST"]
    assert {address for _, address in requests} == {url}


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("location", "followed"),
    [
        ("http://upstream.test/mcp/", True),
        ("http://elsewhere.test/mcp", False),
        ("https://upstream.test:8443/mcp", False),
    ],
)
async def test_stream_within_origin_follows_only_same_origin_redirects(location: str, followed: bool) -> None:
    def answer(request: httpx2.Request) -> httpx2.Response:
        if request.url.path == "/mcp":
            return httpx2.Response(307, headers={"location": location})
        return httpx2.Response(200, json={"ok": True})

    async with (
        httpx2.AsyncClient(transport=httpx2.MockTransport(answer)) as client,
        stream_within_origin(client, "POST", "http://upstream.test/mcp", content=b"{}") as response,
    ):
        assert (response.status_code == 200) is followed
        assert (response.next_request is not None) is not followed

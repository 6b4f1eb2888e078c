"""The server side of one front door, driven in-process for `bench_own_work.py --front sdk|relay`.

What runs per call is everything Bastion's process does for a `tools/call` POST after
uvicorn has parsed the HTTP request and before the upstream client sends it: the front
door's body judgement (`front_checks.judge`), then either the SDK's server stack
(`StreamableHTTPSessionManager` -> `lowlevel.Server` -> the recorder middleware ->
`ProxyServer`) or Bastion's relay (`RelayHttpEndpoint` -> `Relay` -> the audit hook ->
`ProxyServer`), the guard pipeline, the audit records, and the answer's serialization.
The upstream is a stand-in (`StubUpstream`) that answers after the same 2 ms sleep as the
rest of the benchmark, so the upstream client's cost is not counted (it is the same on
both sides).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import orjson
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

from bastion.front.http_auth import attach_principal
from bastion.guard.pipeline import GuardPipeline
from bastion.model import Principal
from bastion.proxy.kept_manager import KeptSessionManager
from bastion.proxy.proxy import ProxyServer
from bastion.proxy.recording import CallRecorder
from bastion.proxy.sdk_user import bind_sdk_user
from bastion.relay.front_checks import Judged, judge, replay
from bastion.relay.host_checks import HostChecks
from bastion.relay.http_front import RelayHttpEndpoint
from bastion.relay.relay import Relay
from bastion.upstream.upstream import UpstreamInfo

INIT = {
    "jsonrpc": "2.0",
    "id": 0,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}},
}


@dataclass
class StubUpstream:
    """What `ProxyServer` needs of an `Upstream`: answers `tools/list` and `tools/call` after `delay` seconds."""

    definition: dict[str, Any]
    result: dict[str, Any]
    delay: float
    name: str = "echo"
    starts: int = 1
    config: Any = None
    info: UpstreamInfo = field(
        default_factory=lambda: UpstreamInfo(
            "2025-11-25",
            {"name": "echo", "version": "1"},  # as the handshake keeps them: wire form (upstream/handshake.py)
            {"tools": {}},
            None,
        )
    )

    async def ensure_started(self) -> UpstreamInfo:
        return self.info

    async def request(self, method: str, params: Any, on_progress: Any = None) -> dict[str, Any]:
        await anyio.sleep(self.delay)
        if method == "tools/list":
            return {"tools": [self.definition]}
        return dict(self.result)

    async def notify(self, method: str, params: Any) -> None:
        return None


Post = Callable[[bytes], Awaitable[list[dict[str, Any]]]]


def _scope(principal: Principal, session: str | None) -> dict[str, Any]:
    headers = [
        (b"host", b"127.0.0.1"),
        (b"accept", b"application/json, text/event-stream"),
        (b"content-type", b"application/json"),
    ]
    if session is not None:
        headers.append((b"mcp-session-id", session.encode()))
    scope: dict[str, Any] = {
        "type": "http",
        "method": "POST",
        "path": "/servers/echo/mcp",
        "raw_path": b"/servers/echo/mcp",
        "query_string": b"",
        "headers": headers,
        "scheme": "http",
        "server": ("127.0.0.1", 80),
        "client": ("127.0.0.1", 50000),
        "root_path": "",
        "http_version": "1.1",
        "bastion.transport": "streamable-http",
    }
    attach_principal(scope, principal)
    return scope


async def _exchange(app: Callable[..., Awaitable[None]], scope: dict[str, Any], body: bytes) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []
    finished = anyio.Event()

    async def receive() -> dict[str, Any]:
        await finished.wait()  # the client stays connected until the answer is complete
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            finished.set()

    await app(scope, replay(body, receive), send)
    return sent


@contextlib.asynccontextmanager
async def front_door(
    kind: str, pipeline: GuardPipeline, recorder: CallRecorder, upstream: StubUpstream, principal: Principal
) -> AsyncIterator[Post]:
    """A `post(body)` through the `kind` (`sdk` or `relay`) front door, with a session opened."""
    proxy = ProxyServer(upstream, pipeline, recorder)  # type: ignore[arg-type]
    proxy.adopt_upstream_identity()
    security = HostChecks(enabled=False)
    manager = KeptSessionManager(
        "echo", lambda: StreamableHTTPSessionManager(app=proxy.sdk, security_settings=security.sdk_settings())
    )
    async with anyio.create_task_group() as tg:
        await tg.start(manager.run)
        relay = RelayHttpEndpoint(Relay(proxy, recorder), manager, security) if kind == "relay" else None
        session: str | None = None

        async def post(body: bytes) -> list[dict[str, Any]]:
            judged = judge(body)
            assert isinstance(judged, Judged)
            scope = _scope(principal, session)
            if relay is not None:

                async def app(scope: Any, receive: Any, send: Any) -> None:
                    await relay.post(scope, receive, send, body, judged.message)

                return await _exchange(app, scope, body)
            bind_sdk_user(scope)  # what the front door adds before handing a request to the SDK's transport
            return await _exchange(manager.handle_request, scope, body)

        opened = await post(orjson.dumps(INIT))
        start = opened[0]
        session = next(v.decode() for k, v in start["headers"] if k == b"mcp-session-id")
        await post(orjson.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        yield post
        if relay is not None:
            await relay.close()
        tg.cancel_scope.cancel()

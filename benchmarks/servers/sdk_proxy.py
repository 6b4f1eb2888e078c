"""The floor under Bastion's latency: the same two SDK stacks, forwarding only.

An MCP server made of the SDK's own parts, the way Bastion's proxy is (the low-level
`Server` behind `StreamableHTTPSessionManager` on uvicorn, or `stdio_server()` on
loop-driven pipes), forwarding `tools/list` and `tools/call` raw through Bastion's
`Upstream(client="sdk")` (the SDK's client dispatcher and transport, not Bastion's own
session). No authentication, guard checks, audit or routing: what it adds to a call is
what the two protocol hops cost on their own.

    python sdk_proxy.py http UPSTREAM_URL PORT     # Streamable HTTP front door on 127.0.0.1:PORT
    python sdk_proxy.py stdio ECHO_SERVER_SCRIPT   # stdio front door, the echo server over stdio
"""

from __future__ import annotations

import sys
from typing import Any

import anyio
import mcp_types as types
import uvicorn
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from starlette.types import Receive, Scope, Send

from bastion.cli.main import EVENT_LOOP_OPTIONS
from bastion.config import HttpServerConfig, StdioServerConfig
from bastion.front.listening import bind_socket
from bastion.proxy.proxy import _inbound_result, outbound_params
from bastion.stdio_pipes import loop_driven_stdio
from bastion.upstream.upstream import Upstream


async def _ignore(method: str, params: dict[str, Any]) -> Any:
    return {}


async def serve(kind: str, target: str, port: int) -> None:
    if kind == "http":
        config: Any = HttpServerConfig(url=target)
    else:
        config = StdioServerConfig(command=sys.executable, args=[target, "stdio"])
    upstream = Upstream("echo", config, on_server_request=_ignore, on_notification=_ignore, client="sdk")

    async def forward(ctx: Any, params: Any) -> dict[str, Any]:
        result = _inbound_result(await upstream.request(ctx.method, outbound_params(ctx.params)))
        if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS and "resultType" not in result:
            result["resultType"] = "complete"
        return result

    async with upstream.running():
        info = await upstream.ensure_started()
        # As Bastion does: no per-call tools/list upstream for the SDK's Mcp-Param header check.
        server: Server[Any] = Server("echo", version="1", get_tool_input_schema=lambda name: None)
        server.get_capabilities = lambda *args, **kwargs: info.capabilities  # type: ignore[method-assign]
        server.add_request_handler("tools/call", types.CallToolRequestParams, forward)
        server.add_request_handler("tools/list", types.RequestParams, forward)
        if kind == "stdio":
            async with loop_driven_stdio() as (stdin, stdout), stdio_server(stdin, stdout) as (read, write):
                await server.run(read, write, server.create_initialization_options())
            return
        manager = StreamableHTTPSessionManager(app=server)

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http":
                await manager.handle_request(scope, receive, send)

        sock = bind_socket("127.0.0.1", port)
        http = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False))
        async with manager.run():
            await http.serve(sockets=[sock])


if __name__ == "__main__":
    kind, target = sys.argv[1], sys.argv[2]
    port = int(sys.argv[3]) if kind == "http" else 0
    anyio.run(serve, kind, target, port, backend_options=EVENT_LOOP_OPTIONS)

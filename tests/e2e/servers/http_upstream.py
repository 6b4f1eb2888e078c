"""A small real MCP server over HTTP, for the tests that stop (and restart) an HTTP upstream.

Run as `python http_upstream.py PORT [ERA]` (PORT 0 picks a free port). It serves the SDK's
`MCPServer` with uvicorn, which logs `Uvicorn running on http://...` once it listens, so a test
waits for that line (and learns the port) rather than polling. ERA is

- `modern` (the default): Streamable HTTP at /mcp, speaking 2026-07-28 (stateless) as well as
  the handshake era;
- `handshake`: Streamable HTTP at /mcp, refusing `server/discover`, so a client falls back to
  `initialize` and holds an `Mcp-Session-Id` (a 2025-11-25-era server). Each `tools/call` of
  `forgotten` ends its caller's session before the server reads it (a real DELETE), so the
  server answers it with HTTP 404, as one that forgot the session does; it never runs;
- `sse`: the legacy HTTP+SSE transport at /sse.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import anyio
import httpx2
import uvicorn
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import Context, MCPServer
from mcp.shared.exceptions import MCPError
from mcp_types import METHOD_NOT_FOUND
from starlette.types import ASGIApp, Message, Receive, Scope, Send


async def handshake_only(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
    """Answer `server/discover` the way a server from before 2026-07-28 does: no such method."""
    if ctx.method == "server/discover":
        raise MCPError(code=METHOD_NOT_FOUND, message="Method not found")
    return await call_next(ctx)


ERA = sys.argv[2] if len(sys.argv) > 2 else "modern"
server = MCPServer("flaky-http", middleware=[handshake_only] if ERA == "handshake" else None)
runs = 0


@server.tool()
async def echo(text: str) -> str:
    """Return the text."""
    return text


@server.tool()
async def count() -> int:
    """How many times this tool has run in this process (a call delivered twice shows as 2)."""
    global runs
    runs += 1
    return runs


@server.tool()
async def end_session(ctx: Context) -> str:
    """Count a run, then end the caller's session (a DELETE for its id) while this call is in flight."""
    global runs
    runs += 1
    headers = ctx.headers or {}
    async with httpx2.AsyncClient() as http:
        await http.delete(f"http://{headers['host']}/mcp", headers={"mcp-session-id": headers["mcp-session-id"]})
    return "unreachable: the session ended under this call"


@server.tool()
async def forgotten() -> int:
    """Never runs in the `handshake` era (see the module docstring); counts a run if it does."""
    global runs
    runs += 1
    return runs


class ForgetBeforeForgotten:
    """Ends the caller's session (a DELETE to this server) before a `tools/call` of `forgotten`
    reaches the server, which then answers that call with HTTP 404 for an unknown session."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        body, more = b"", True
        while more:
            message = await receive()
            body, more = body + message.get("body", b""), message.get("more_body", False)
        headers = dict(scope["headers"])
        session = headers.get(b"mcp-session-id")
        if session is not None and _calls_forgotten(body):
            async with httpx2.AsyncClient() as http:
                host = headers[b"host"].decode()
                await http.delete(f"http://{host}/mcp", headers={"mcp-session-id": session.decode()})
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


def _calls_forgotten(body: bytes) -> bool:
    try:
        message = json.loads(body)
    except ValueError:
        return False
    if not isinstance(message, dict) or message.get("method") != "tools/call":
        return False
    params = message.get("params")
    return isinstance(params, dict) and params.get("name") == "forgotten"


@server.tool()
async def hold(ctx: Context) -> str:
    """Report progress, then block until this server is stopped (a call in flight when it dies)."""
    await ctx.report_progress(1, None, "holding")
    await anyio.sleep_forever()
    return "unreachable"


async def serve(port: int) -> None:
    app: ASGIApp = server.sse_app(host="127.0.0.1") if ERA == "sse" else server.streamable_http_app(host="127.0.0.1")
    if ERA == "handshake":
        app = ForgetBeforeForgotten(app)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="info", access_log=False)
    await uvicorn.Server(config).serve()


if __name__ == "__main__":
    anyio.run(serve, int(sys.argv[1]))

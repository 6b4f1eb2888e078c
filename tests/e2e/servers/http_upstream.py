"""A small real MCP server over HTTP, for the tests that stop (and restart) an HTTP upstream.

Run as `python http_upstream.py PORT [ERA]` (PORT 0 picks a free port). It serves the SDK's
`MCPServer` with uvicorn, which logs `Uvicorn running on http://...` once it listens, so a test
waits for that line (and learns the port) rather than polling. ERA is

- `modern` (the default): Streamable HTTP at /mcp, speaking 2026-07-28 (stateless) as well as
  the handshake era;
- `handshake`: Streamable HTTP at /mcp, refusing `server/discover`, so a client falls back to
  `initialize` and holds an `Mcp-Session-Id` (a 2025-11-25-era server);
- `sse`: the legacy HTTP+SSE transport at /sse.
"""

from __future__ import annotations

import sys
from typing import Any

import anyio
import httpx2
import uvicorn
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import Context, MCPServer
from mcp.shared.exceptions import MCPError
from mcp_types import METHOD_NOT_FOUND


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
async def hold(ctx: Context) -> str:
    """Report progress, then block until this server is stopped (a call in flight when it dies)."""
    await ctx.report_progress(1, None, "holding")
    await anyio.sleep_forever()
    return "unreachable"


async def serve(port: int) -> None:
    app = server.sse_app(host="127.0.0.1") if ERA == "sse" else server.streamable_http_app(host="127.0.0.1")
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="info", access_log=False)
    await uvicorn.Server(config).serve()


if __name__ == "__main__":
    anyio.run(serve, int(sys.argv[1]))

"""A small real MCP server over Streamable HTTP, for the tests that stop an HTTP upstream.

Run as `python http_upstream.py PORT` (0 picks a free port). It serves the SDK's `MCPServer`
at http://127.0.0.1:PORT/mcp with uvicorn, which logs `Uvicorn running on http://...` once it
listens, so a test waits for that line (and learns the port) rather than polling.
"""

from __future__ import annotations

import sys

import anyio
import uvicorn
from mcp.server.mcpserver import Context, MCPServer

server = MCPServer("flaky-http")


@server.tool()
async def echo(text: str) -> str:
    """Return the text."""
    return text


@server.tool()
async def hold(ctx: Context) -> str:
    """Report progress, then block until this server is stopped (a call in flight when it dies)."""
    await ctx.report_progress(1, None, "holding")
    await anyio.sleep_forever()
    return "unreachable"


async def serve(port: int) -> None:
    app = server.streamable_http_app(host="127.0.0.1")
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="info", access_log=False)
    await uvicorn.Server(config).serve()


if __name__ == "__main__":
    anyio.run(serve, int(sys.argv[1]))

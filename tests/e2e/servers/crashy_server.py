"""A small real MCP server for the tests: tools that block, report progress, or kill the server.

Run as `python crashy_server.py`; it speaks MCP over stdio with the SDK's `MCPServer`.
"""

from __future__ import annotations

import os

import anyio
from mcp.server.mcpserver import Context, MCPServer

server = MCPServer("crashy")


@server.tool()
async def echo(text: str) -> str:
    """Return the text."""
    return text


@server.tool()
async def die_midway(ctx: Context) -> str:
    """Report progress once, then kill this server process before answering."""
    await ctx.report_progress(1, 2, "about to die")
    os._exit(3)


@server.tool()
async def wait_forever(ctx: Context) -> str:
    """Report progress, then block until cancelled."""
    await ctx.report_progress(1, None, "waiting")
    await anyio.sleep_forever()
    return "unreachable"


if __name__ == "__main__":
    server.run("stdio")

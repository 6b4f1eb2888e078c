"""A small real MCP server whose tool descriptions come from a file: a stand-in for a server
that changes its tools between runs (a "rug pull" on upgrade) or ships a poisoned description.

Run as `python mutable_server.py TOOLS.json`; the file maps tool names to descriptions, read
once at start. Every tool takes two numbers and returns their sum. With `MUTABLE_EXIT_TOOL=1`
in its environment it also has `exit_now`, which ends the process (an upgrade under a
running gateway: the next request starts it again, reading the file anew). Speaks MCP over stdio.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from mcp.server.mcpserver import MCPServer

server = MCPServer("mutable")


async def add(a: float, b: float) -> str:
    return str(a + b)


async def exit_now() -> str:
    os._exit(0)


def main(spec: Path) -> None:
    for name, description in json.loads(spec.read_text(encoding="utf-8")).items():
        server.add_tool(add, name=name, description=description)
    if os.environ.get("MUTABLE_EXIT_TOOL") == "1":
        server.add_tool(exit_now, name="exit_now", description="End this server process.")
    server.run("stdio")


if __name__ == "__main__":
    main(Path(sys.argv[1]))

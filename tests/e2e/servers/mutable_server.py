"""A small real MCP server whose tool descriptions come from a file: a stand-in for a server
that changes its tools between runs (a "rug pull" on upgrade) or ships a poisoned description.

Run as `python mutable_server.py TOOLS.json`; the file maps tool names to descriptions, read
once at start. Every tool takes two numbers and returns their sum. Speaks MCP over stdio.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from mcp.server.mcpserver import MCPServer

server = MCPServer("mutable")


async def add(a: float, b: float) -> str:
    return str(a + b)


def main(spec: Path) -> None:
    for name, description in json.loads(spec.read_text(encoding="utf-8")).items():
        server.add_tool(add, name=name, description=description)
    server.run("stdio")


if __name__ == "__main__":
    main(Path(sys.argv[1]))

"""A real MCP server that writes one line per tool call it receives: the fuzzer's witness.

Run as `python counting_server.py CALLS_FILE`. Every call to `echo` (or any other name the
SDK routes to it) appends a line to CALLS_FILE before answering, so a test can compare what
reached the server with what the audit log recorded. Speaks MCP over stdio.
"""

from __future__ import annotations

import sys
from pathlib import Path

from mcp.server.mcpserver import MCPServer

server = MCPServer("counting")
calls_file = Path(sys.argv[1])


def echo(text: str = "") -> str:
    with calls_file.open("a", encoding="utf-8") as calls:
        calls.write("call\n")
    return text


if __name__ == "__main__":
    server.add_tool(echo, name="echo", description="Return the text given.")
    server.run("stdio")

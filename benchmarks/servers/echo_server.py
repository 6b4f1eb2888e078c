"""The benchmark upstream: a real SDK `MCPServer` with one trivial tool, `echo(text) -> text`.

Run as `python echo_server.py stdio` (MCP over stdin/stdout) or
`python echo_server.py http PORT` (Streamable HTTP at http://127.0.0.1:PORT/mcp).
The HTTP mode is served by uvicorn with the access log off, as Bastion serves its own
front door, so neither side of a comparison pays for per-request logging.
"""

from __future__ import annotations

import sys

import anyio
from mcp.server.mcpserver import MCPServer

server = MCPServer("echo")


@server.tool()
async def echo(text: str) -> str:
    """Return the text unchanged."""
    return text


async def serve_http(port: int) -> None:
    import uvicorn

    app = server.streamable_http_app(host="127.0.0.1")
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    await uvicorn.Server(config).serve()


def main(argv: list[str]) -> None:
    mode = argv[1] if len(argv) > 1 else "stdio"
    if mode == "stdio":
        server.run("stdio")
    elif mode == "http" and len(argv) > 2:
        anyio.run(serve_http, int(argv[2]))
    else:
        sys.exit("usage: echo_server.py stdio | http PORT")


if __name__ == "__main__":
    main(sys.argv)

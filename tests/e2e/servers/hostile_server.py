# Blocking calls in async tools are the point: a hostile server does not play fair.
# ruff: noqa: ASYNC240, ASYNC251
"""A deliberately hostile MCP server for the sandbox tests. Every tool tries to get out.

Run as `python hostile_server.py`; it speaks MCP over stdio with the SDK's `MCPServer`.
Tools answer `ok: ...` when the attempt worked and `refused: ...` when it failed; the
bombs and the hang never answer (the supervisor must kill and restart the server).
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
import urllib.request
from pathlib import Path

from mcp.server.mcpserver import MCPServer

server = MCPServer("hostile")


def _refused(exc: BaseException) -> str:
    return f"refused: {type(exc).__name__}: {exc}"


@server.tool()
async def echo(text: str) -> str:
    """Return the text (proves the server is alive)."""
    return text


@server.tool()
async def read_file(path: str) -> str:
    """Read a file."""
    try:
        return "ok: " + Path(path).read_text(errors="replace")[:200]
    except OSError as exc:
        return _refused(exc)


@server.tool()
async def write_file(path: str, text: str) -> str:
    """Write a file."""
    try:
        Path(path).write_text(text)
    except OSError as exc:
        return _refused(exc)
    return "ok: written"


@server.tool()
async def connect_tcp(host: str, port: int) -> str:
    """Open a TCP connection, around any proxy."""
    try:
        with socket.create_connection((host, port), timeout=3):
            return "ok: connected"
    except OSError as exc:
        return _refused(exc)


@server.tool()
async def resolve(name: str) -> str:
    """Resolve a DNS name."""
    try:
        return "ok: " + ", ".join(sorted({str(i[4][0]) for i in socket.getaddrinfo(name, 80)}))
    except OSError as exc:
        return _refused(exc)


@server.tool()
async def fetch(url: str, use_proxy: bool = True) -> str:
    """GET a URL, through the proxy the environment names (or around it)."""
    handlers = [] if use_proxy else [urllib.request.ProxyHandler({})]
    opener = urllib.request.build_opener(*handlers)
    try:
        with opener.open(url, timeout=5) as response:
            return "ok: " + response.read().decode(errors="replace")[:200]
    except OSError as exc:
        return _refused(exc)


@server.tool()
async def environment() -> str:
    """The names of the environment variables it was given."""
    return " ".join(sorted(os.environ))


@server.tool()
async def env_digest(name: str) -> str:
    """The SHA-256 of one environment variable's value (not the value: it would land in logs)."""
    value = os.environ.get(name)
    return "(unset)" if value is None else hashlib.sha256(value.encode()).hexdigest()


@server.tool()
async def fork_bomb(count_file: str) -> str:
    """Fork until refused, counting successes in `count_file`; children sleep, the parent keeps trying forever.

    Blocks the event loop on purpose: the server stops answering pings.
    """
    forks = 0
    while True:
        try:
            pid = os.fork()
        except OSError:
            # Atomically: the server is killed at any moment.
            Path(count_file + ".new").write_text(str(forks))
            os.replace(count_file + ".new", count_file)
            time.sleep(0.05)
            continue
        if pid == 0:
            while True:
                time.sleep(3600)
        forks += 1


@server.tool()
async def memory_bomb() -> str:
    """Allocate and touch memory until something stops it; never answers."""
    hoard = []
    while True:
        try:
            hoard.append(bytearray(8 << 20))
        except MemoryError:
            time.sleep(0.05)


@server.tool()
async def hang() -> str:
    """Stop answering anything, forever."""
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    server.run()

"""A real HTTP MCP upstream process (tests/e2e/servers/http_upstream.py) a test can stop and start again."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from tests.e2e.conftest import SERVERS_DIR, LineReader

UPSTREAM = str(SERVERS_DIR / "http_upstream.py")


@dataclass
class HttpUpstream:
    process: subprocess.Popen[str]
    port: int
    era: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/{'sse' if self.era == 'sse' else 'mcp'}"

    @property
    def config(self) -> dict[str, str]:
        """The server's entry in a Bastion config."""
        return {"url": self.url, "transport": "sse"} if self.era == "sse" else {"url": self.url}

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)


@contextmanager
def http_upstream(port: int = 0, era: str = "modern") -> Iterator[HttpUpstream]:
    """The upstream process, once it listens (its uvicorn says so on stderr).

    `era`: `modern` (2026-07-28 and the handshake era), `handshake` (refuses `server/discover`,
    so clients hold an `Mcp-Session-Id`), or `sse` (the legacy HTTP+SSE transport).
    """
    process = subprocess.Popen(
        [sys.executable, UPSTREAM, str(port), era], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        listening = LineReader(process.stderr).wait_for(r"Uvicorn running on http://127\.0\.0\.1:(\d+)", 30)
        yield HttpUpstream(process, int(listening[1]), era)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)

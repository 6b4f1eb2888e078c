"""Helpers for the sandbox tests: a sink tests can wait on, and a local "allowlisted site"."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

import anyio

from bastion.runtime.events import RecordingSink, RuntimeEvent

E = TypeVar("E")


class WaitingSink(RecordingSink):
    """Records runtime events and wakes tests waiting for one."""

    def __init__(self) -> None:
        super().__init__()
        self._changed = anyio.Event()

    def emit(self, event: RuntimeEvent) -> None:
        super().emit(event)
        self._changed.set()
        self._changed = anyio.Event()

    async def wait_for(self, kind: type[E], count: int = 1) -> list[E]:
        """Wait (bound it with anyio.fail_after) until `count` events of `kind` were emitted."""
        while len(found := self.of_type(kind)) < count:
            await self._changed.wait()
        return found


class _Page(BaseHTTPRequestHandler):
    body = b"hello from the allowlisted site"
    requests: list[str]

    def do_GET(self) -> None:
        self.requests.append(f"{self.headers.get('Host')} {self.path}")
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def local_site() -> Iterator[tuple[int, list[str]]]:
    """A plain HTTP server on 127.0.0.1 (port, requests it saw), standing in for an allowlisted domain."""
    requests: list[str] = []
    handler = type("Page", (_Page,), {"requests": requests})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd.server_address[1], requests
    finally:
        httpd.shutdown()
        httpd.server_close()

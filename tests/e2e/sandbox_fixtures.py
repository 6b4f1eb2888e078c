"""Helpers for the sandbox tests: a local "allowlisted site"."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


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

"""Notices when a Streamable HTTP upstream has forgotten Bastion's session (HTTP 404).

A handshake-era server (2025-11-25 and older) gives the client an `Mcp-Session-Id` at
`initialize`. When it ends that session (it restarted, or expired it) it answers every
request carrying the id with HTTP 404, and the spec says the client must start a new
session. The SDK's transport turns that 404 into an ordinary JSON-RPC error for the one
request, so Bastion watches the HTTP responses itself (an `httpx2` response hook on the
session's own client) and records which of its requests met the 404.

A request refused that way was not processed: the server answers a session id it does
not know before it looks at the message. So that one request may be sent again on a new
session without running twice. A request that met anything else (a result, a tool error,
a dropped connection) is never sent again: it may have run.
"""

from __future__ import annotations

import itertools
import json

import anyio
import httpx2

from bastion.mcp_names import MCP_SESSION_ID

__all__ = ["SessionWatch"]


class SessionWatch:
    """One upstream session's 404 watch, and the ids of the requests Bastion sends on it.

    `on_response` is the response hook. Once the session has expired, no new request may
    use it (`expired`); it is ended (`scope` cancelled) once the requests still in flight
    on it have had their answers, so none of them is cut off mid-way.
    """

    def __init__(self) -> None:
        self.expired = False
        self.scope = anyio.CancelScope()
        """Cancelled to end the session, once expired and no request is in flight on it."""
        self._refused: set[str] = set()
        self._ids = itertools.count(1)
        self._in_flight = 0

    def next_id(self) -> str:
        """A request id that is unique on this session (a string, so the dispatcher never mints it)."""
        return f"bastion-{next(self._ids)}"

    def refused(self, request_id: str) -> bool:
        """Whether the server answered this request with the 404 for an unknown session."""
        return request_id in self._refused

    def begin(self) -> None:
        self._in_flight += 1

    def end(self) -> None:
        self._in_flight -= 1
        self._end_if_drained()

    async def on_response(self, response: httpx2.Response) -> None:
        """The `httpx2` response hook: runs before the SDK reads the response."""
        request = response.request
        if response.status_code != 404 or request.method != "POST" or MCP_SESSION_ID not in request.headers:
            # A DELETE closing an already forgotten session answers 404 too: nothing to do.
            return
        request_id = _request_id(request)
        if request_id is not None:
            self._refused.add(request_id)
        self.expired = True
        self._end_if_drained()

    def _end_if_drained(self) -> None:
        if self.expired and self._in_flight == 0:
            self.scope.cancel()


def _request_id(request: httpx2.Request) -> str | None:
    """The JSON-RPC id of the request a POST carried (None for anything else)."""
    try:
        message = json.loads(request.content)
    except (httpx2.RequestNotRead, ValueError):
        return None
    if not isinstance(message, dict) or "method" not in message:
        return None  # not a request (a response Bastion relayed to a server-to-client request)
    request_id = message.get("id")
    return request_id if isinstance(request_id, str) else None

"""What a JSON-RPC session needs of its connection to a server (`Wire`), and what it gives it (`Inbox`).

A wire frames bytes; the session owns ids, waiters and handlers. A stdio wire writes lines
and reads the server's stdout in one reader task; a Streamable HTTP wire POSTs each message
and reads a request's reply (JSON or an SSE stream) in the requesting task, plus the GET
stream for messages the server sends on its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

RequestId = str | int


class ConnectionLost(Exception):
    """The connection to the server failed or closed: no message can be sent on it any more."""


class Inbox(Protocol):
    """Where a wire hands what it read (the session)."""

    def deliver(self, message: Any, *, reply_to: RequestId | None = None) -> None:
        """One parsed message. `reply_to`: the request whose own reply stream carried it (HTTP)."""
        ...

    def fail(self, request_id: RequestId, code: int, message: str) -> None:
        """The request can have no reply from the server: settle it with this error (if still waiting)."""
        ...


class Wire(Protocol):
    """One connection to a server, as a JSON-RPC session drives it."""

    @property
    def cancels_by_notification(self) -> bool:
        """Whether an abandoned request is cancelled with `notifications/cancelled` (False on 2026 HTTP:
        aborting the request's own POST is the signal there)."""
        ...

    async def send(
        self,
        payload: bytes,
        *,
        method: str | None,
        request_id: RequestId | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Send one serialised message. For a request (`request_id`) an HTTP wire also reads its
        reply into the inbox before returning. Raises `ConnectionLost`."""
        ...

    def attach(self, inbox: Inbox) -> None:
        """Where to hand what is read (set once, before anything is sent)."""
        ...

    async def run(self) -> None:
        """Read what the server sends by itself into the inbox; return when the connection has ended."""
        ...

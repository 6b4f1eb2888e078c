"""One POSTed request's response, written by the task that serves the request.

The answer is sent as plain JSON when it is the only thing to send. What the server sends
the agent before it (progress, a server-to-client request tied to the call) starts an SSE
response instead, and so does a call still unanswered after `keepalive_s` (held for
approval, say): the stream is then kept alive with a comment every `keepalive_s` until the
answer ends it. Nothing is spawned for a call answered in time (a timer only): the request
is served in the task that received it, not handed to another and waited for.

Once the answer is sent (or the agent went away) the stream is closed: `send` raises
`anyio.ClosedResourceError`, as a closed memory stream does, so a server-to-client request
falls back to the session's GET stream and late progress is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import anyio
from starlette.types import Message, Send

from bastion.relay.session import OutMessage

SSE_HEADERS = [
    (b"cache-control", b"no-cache, no-transform"),
    (b"connection", b"keep-alive"),
    (b"content-type", b"text/event-stream"),
    (b"x-accel-buffering", b"no"),
]
PING = b": ping\r\n\r\n"
"""An SSE comment: keeps a quiet stream's connection alive."""


def sse_event(message: bytes) -> bytes:
    return b"event: message\r\ndata: " + message + b"\r\n\r\n"


async def respond(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    """A whole response: status, headers (with its length) and body."""
    start: Message = {
        "type": "http.response.start",
        "status": status,
        "headers": [*headers, (b"content-length", str(len(body)).encode())],
    }
    await send(start)
    await send({"type": "http.response.body", "body": body})


class ResponseStream:
    """The `Outbox` of one request: JSON if the answer comes first and soon, else SSE (see the module docstring)."""

    def __init__(self, send: Send, headers: list[tuple[bytes, bytes]], keepalive_s: float) -> None:
        self._send = send
        self._headers = headers
        self._keepalive_s = keepalive_s
        self._lock = asyncio.Lock()
        """Held by whoever writes: the answer, a message sent before it, the keep-alive. Taken
        without a trip through the event loop when free (asyncio's lock does not yield then): the
        answer is written before anything queued behind it runs (`recording.record_soon`). An
        asyncio lock rather than anyio's: one per request, and anyio's costs a dozen more calls
        (its backend looked up to make it, a cancellation checkpoint to take it)."""
        self._streaming = False
        """The SSE response has started."""
        self._closed = False
        self._timer: asyncio.TimerHandle | None = None
        self._pinger: asyncio.Task[None] | None = None

    async def send(self, item: OutMessage, /) -> None:
        """A message for the agent before the answer (progress, a server-to-client request)."""
        if self._closed:
            raise anyio.ClosedResourceError
        async with self._lock:
            if self._closed:
                raise anyio.ClosedResourceError
            await self._write_sse(sse_event(item[0]))

    @contextlib.contextmanager
    def kept_alive(self) -> Iterator[None]:
        """While the request is served: after `keepalive_s` without an answer, the SSE stream
        starts and a comment is sent every `keepalive_s`."""
        self._timer = asyncio.get_running_loop().call_later(self._keepalive_s, self._start_pinging)
        try:
            yield
        finally:
            self._stop_pinging()

    async def finish(self, answer: bytes, status: int = 200) -> None:
        """Send the answer, ending the response; the stream is closed after it."""
        self._stop_pinging()
        async with self._lock:
            if self._closed:
                return  # the agent went away: nothing to write to
            self._closed = True
            if not self._streaming:
                await respond(self._send, status, answer, [(b"content-type", b"application/json"), *self._headers])
                return
            with contextlib.suppress(OSError):  # the agent went away; the call was served and recorded all the same
                await self._send({"type": "http.response.body", "body": sse_event(answer), "more_body": True})
                await self._send({"type": "http.response.body", "body": b"", "more_body": False})

    # Writing (with `_lock` held)
    async def _write_sse(self, body: bytes) -> None:
        try:
            if not self._streaming:
                self._streaming = True
                headers = [*SSE_HEADERS, *self._headers]
                await self._send({"type": "http.response.start", "status": 200, "headers": headers})
            await self._send({"type": "http.response.body", "body": body, "more_body": True})
        except OSError:
            self._closed = True  # the agent went away
            raise anyio.ClosedResourceError from None

    # The keep-alive, started only for a slow answer
    def _start_pinging(self) -> None:
        if not self._closed:
            self._pinger = asyncio.get_running_loop().create_task(self._ping())

    def _stop_pinging(self) -> None:
        """Cancel the timer and the pinger (not awaited: a pinger cancelled while it waited for
        the lock or slept just ends; one cancelled mid-write has written a whole comment or nothing)."""
        if self._timer is not None:
            self._timer.cancel()
        if self._pinger is not None:
            self._pinger.cancel()

    async def _ping(self) -> None:
        while not self._closed:
            async with self._lock:
                if self._closed:
                    return
                try:
                    await self._write_sse(PING)
                except anyio.ClosedResourceError:
                    return
            await asyncio.sleep(self._keepalive_s)

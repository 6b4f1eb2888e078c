"""Legacy HTTP+SSE for the relay: `/servers/<name>/sse` with `.../messages/`, and `/sse` with `/messages/`.

As the SDK's `SseServerTransport` does it:

- GET opens the agent's session and its event stream; the first event (`endpoint`) names
  the URL to POST to (`...messages/?session_id=<hex>`); every message for the agent
  (answers, progress, server notifications and requests) follows as a `message` event;
  the stream is kept alive with comments; when the agent goes, its session ends and what
  it had in flight is cancelled.
- POST of one message: 400 without `session_id` or with one that is not a UUID, 404 for an
  unknown session or another credential's (as if it did not exist), 400 for a body that is
  not a JSON-RPC message; otherwise 202, and the message is handled on the session
  (`SessionFront`: requests through the relay, answers on the stream).

The front door (`gateway.http_app`) authenticates, applies its checks and parses the body once.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Coroutine
from functools import partial
from typing import Any
from urllib.parse import parse_qs, quote

import anyio
from anyio.abc import TaskGroup
from starlette.types import Receive, Scope, Send

from bastion.model import Principal
from bastion.relay import jsonrpc
from bastion.relay.flow_server import FlowServer
from bastion.relay.host_checks import HostChecks
from bastion.relay.response_stream import PING
from bastion.relay.session import OutMessage
from bastion.relay.session_front import OutboxSession, SessionFront

logger = logging.getLogger(__name__)

TRANSPORT = "sse"
KEEPALIVE_SECONDS = 15.0
_BUFFER = 64
_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-store"),
    (b"connection", b"keep-alive"),
    (b"x-accel-buffering", b"no"),
]


class RelaySseEndpoint:
    """Legacy HTTP+SSE sessions of one endpoint (a server, a virtual server, or `/mcp`)."""

    def __init__(self, relay: FlowServer, messages_path: str, security: HostChecks) -> None:
        self.front = SessionFront(relay, TRANSPORT)
        self.messages_path = messages_path
        self.security = security
        self.sessions: dict[str, tuple[OutboxSession, TaskGroup]] = {}

    async def connect(self, scope: Scope, receive: Receive, send: Send) -> None:
        """GET: the agent's session, for as long as its event stream stays open."""
        refused = self.security.refusal(scope, is_post=False)
        if refused is not None:
            await refused(scope, receive, send)
            return
        principal = scope["bastion.principal"]
        assert isinstance(principal, Principal)
        out, into = anyio.create_memory_object_stream[OutMessage](_BUFFER)
        session = OutboxSession(uuid.uuid4().hex, _owner(scope), principal, out)
        endpoint = f"{quote(scope.get('root_path', '').rstrip('/') + self.messages_path)}?session_id={session.id}"
        try:
            await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
            first = _event(b"endpoint", endpoint.encode())
            await send({"type": "http.response.body", "body": first, "more_body": True})
            async with anyio.create_task_group() as tg:
                self.sessions[session.id] = (session, tg)

                async def watch_disconnect() -> None:
                    while (await receive())["type"] != "http.disconnect":
                        pass
                    tg.cancel_scope.cancel()  # the agent went away: what it had in flight is cancelled

                tg.start_soon(watch_disconnect)
                with into:
                    while True:
                        message: OutMessage | None = None
                        with anyio.move_on_after(KEEPALIVE_SECONDS):
                            message = await into.receive()
                        body = PING if message is None else _event(b"message", message[0])
                        await send({"type": "http.response.body", "body": body, "more_body": True})
        except OSError:
            pass  # the agent went away
        finally:
            self.sessions.pop(session.id, None)
            out.close()
            await session.close()

    async def post(self, scope: Scope, receive: Receive, send: Send, raw: Any) -> None:
        """POST of one message (already parsed once by the front door: `raw`)."""
        refused = self.security.refusal(scope, is_post=True)
        if refused is not None:
            await refused(scope, receive, send)
            return
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        values = query.get("session_id")
        if not values:
            await _plain(send, 400, b"session_id is required")
            return
        try:
            session_id = uuid.UUID(hex=values[0]).hex
        except ValueError:
            await _plain(send, 400, b"Invalid session ID")
            return
        found = self.sessions.get(session_id)
        if found is None or found[0].owner != _owner(scope):
            await _plain(send, 404, b"Could not find session")  # another credential's: as if it did not exist
            return
        try:
            message = jsonrpc.classify(raw)
        except jsonrpc.Invalid:
            await _plain(send, 400, b"Could not parse message")
            return
        await _plain(send, 202, b"Accepted")
        session, tg = found
        await self.front.receive(partial(_start_in, tg), session, message, scope)

    async def close(self) -> None:
        """End every session (the gateway is stopping)."""
        for session, tg in list(self.sessions.values()):
            tg.cancel_scope.cancel()
            await session.close()


def _event(kind: bytes, data: bytes) -> bytes:
    return b"event: " + kind + b"\r\ndata: " + data + b"\r\n\r\n"


async def _plain(send: Send, status: int, body: bytes) -> None:
    headers = [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _owner(scope: Scope) -> str:
    principal = scope["bastion.principal"]
    return str(principal.credential_id or principal.agent)


def _start_in(tg: TaskGroup, work: Coroutine[Any, Any, None]) -> None:
    """Answer a request in the SSE session's task group (it ends with the event stream)."""
    tg.start_soon(_run, work)


async def _run(work: Coroutine[Any, Any, None]) -> None:
    await work

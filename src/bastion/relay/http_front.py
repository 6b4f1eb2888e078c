"""Streamable HTTP for the relay, at `/servers/<name>/mcp` (handshake-era sessions).

The front door (`gateway.http_app`) authenticates, applies its checks (body size,
batches, id-less requests, duplicate ids, the per-agent rate limit) and parses the body
once; this module speaks the transport as the SDK's `StreamableHTTPSessionManager` does:

- POST: `initialize` without `Mcp-Session-Id` opens a session bound to the credential;
  every other message needs the session (400 without it, 404 for one unknown or another
  credential's). Notifications and responses are accepted with 202. A request is answered
  as JSON when its answer is the first thing to send, as an SSE stream when progress or a
  server-to-client request comes first, or when the answer is slow (held for approval):
  the stream then keeps the connection alive.
- GET: the session's stream of server notifications and requests (one at a time: 409).
- DELETE: ends the session.

Requests of the 2026-07-28 era (an `Mcp-Protocol-Version` header outside the handshake
versions) carry no session: `modern` serves them.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

import anyio
from starlette.types import Receive, Scope, Send

from bastion.mcp_names import HANDSHAKE_PROTOCOL_VERSIONS
from bastion.model import Principal
from bastion.proxy.kept_manager import KeptSessionManager
from bastion.proxy.proxy import progress_token_of
from bastion.relay import jsonrpc
from bastion.relay.accept import accepts
from bastion.relay.asgi_headers import headers_named
from bastion.relay.flow import Flow
from bastion.relay.flow_server import FlowServer
from bastion.relay.host_checks import HostChecks
from bastion.relay.modern import ModernFront
from bastion.relay.request_cancel import RequestCancel
from bastion.relay.response_stream import PING, SSE_HEADERS, ResponseStream, respond, sse_event
from bastion.relay.session import RelaySession, RequestChannel

logger = logging.getLogger(__name__)

SESSION_IDLE_SECONDS = 30 * 60.0
"""A session with nothing in flight for this long is ended (the SDK's default)."""
MAX_SESSIONS = 10_000
KEEPALIVE_SECONDS = 15.0
"""A request whose answer takes longer is answered as an SSE stream, with a comment this often."""

_SESSION = b"mcp-session-id"
_VERSION = b"mcp-protocol-version"


class RelayHttpEndpoint:
    """The relay's Streamable HTTP transport for one server; 2026-era requests go to `sdk`."""

    def __init__(self, relay: FlowServer, sdk: KeptSessionManager, security: HostChecks) -> None:
        self.relay = relay
        self.sdk = sdk
        self.security = security
        self.modern = ModernFront(relay, sdk, self.security)
        """2026-07-28 requests (no session)."""
        self.sessions: dict[str, RelaySession] = {}
        self.idle_seconds: float | None = SESSION_IDLE_SECONDS

    # Entry points
    async def post(self, scope: Scope, receive: Receive, send: Send, body: bytes, raw: Any) -> None:
        """A POSTed message (already parsed once by the front door: `raw`)."""
        headers = _headers(scope)
        version = headers.get(_VERSION)
        if version is not None and version not in HANDSHAKE_PROTOCOL_VERSIONS:
            await self.modern.post(scope, receive, send, body, raw)
            return
        session_id = headers.get(_SESSION)
        session = self._session(session_id, scope) if session_id is not None else None
        if session_id is not None and session is None:
            await _error(send, 404, "Session not found")
            return
        refused = self.security.refusal(scope, is_post=True)
        if refused is not None:
            await refused(scope, receive, send)
            return
        has_json, has_sse = accepts(headers.get(b"accept", ""))
        if not (has_json and has_sse):
            message = "Not Acceptable: Client must accept both application/json and text/event-stream"
            await _error(send, 406, message, session_id)
            return
        try:
            message_in = jsonrpc.classify(raw)
        except jsonrpc.Invalid as exc:
            await _error(send, 400, f"Validation error: {exc}", session_id, jsonrpc.INVALID_PARAMS)
            return
        if session is None:
            if not (isinstance(message_in, jsonrpc.Request) and message_in.method == "initialize"):
                await _error(send, 400, "Bad Request: Missing session ID")
                return
            session = await self._open_session(scope)
            if session is None:
                await _error(send, 503, "Too many open sessions", code=jsonrpc.INTERNAL_ERROR)
                return
            try:
                await self._request(scope, send, session, message_in)
            finally:
                if session.protocol_version is None:  # the handshake failed: nothing was established
                    await self._end(session)
            return
        session.last_active = time.monotonic()
        if isinstance(message_in, jsonrpc.Request):
            await self._request(scope, send, session, message_in)
            return
        await respond(send, 202, b"", [(b"content-type", b"application/json"), (_SESSION, session.id.encode())])
        if isinstance(message_in, jsonrpc.Response):
            session.answer(message_in)
        else:
            await self.relay.notified(session, message_in)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """GET (the session's stream), DELETE (end it), anything else (405)."""
        headers = _headers(scope)
        version = headers.get(_VERSION)
        if version is not None and version not in HANDSHAKE_PROTOCOL_VERSIONS:
            await self.sdk.handle_request(scope, receive, send)
            return
        session_id = headers.get(_SESSION)
        session = self._session(session_id, scope) if session_id is not None else None
        if session_id is not None and session is None:
            await _error(send, 404, "Session not found")
            return
        method = scope["method"]
        refused = self.security.refusal(scope, is_post=False)
        if refused is not None:
            await refused(scope, receive, send)
            return
        if method == "GET":
            if not accepts(headers.get(b"accept", ""))[1]:
                await _error(send, 406, "Not Acceptable: Client must accept text/event-stream", session_id)
                return
            if session is None:
                await _error(send, 400, "Bad Request: Missing session ID")
                return
            await self._get_stream(receive, send, session)
        elif method == "DELETE":
            if session is None:
                await _error(send, 400, "Bad Request: Missing session ID")
                return
            await self._end(session)
            await respond(send, 200, b"", [(b"content-type", b"application/json"), (_SESSION, session.id.encode())])
        else:
            extra = [(b"allow", b"GET, POST, DELETE")]
            await _error(send, 405, "Method Not Allowed", session_id, extra=extra)

    async def close(self) -> None:
        """End every session (the gateway is stopping)."""
        for session in list(self.sessions.values()):
            await self._end(session)

    # Sessions
    def _session(self, session_id: str, scope: Scope) -> RelaySession | None:
        session = self.sessions.get(session_id)
        if session is None or session.owner != _owner(scope):
            return None  # another credential's session answers as if it did not exist
        return session

    async def _open_session(self, scope: Scope) -> RelaySession | None:
        await self._reap_idle()
        if len(self.sessions) >= MAX_SESSIONS:
            return None
        principal = scope["bastion.principal"]
        assert isinstance(principal, Principal)
        session = RelaySession(uuid.uuid4().hex, _owner(scope), principal)
        self.sessions[session.id] = session
        return session

    async def _reap_idle(self) -> None:
        """End the sessions idle for longer than `idle_seconds` (checked as new ones open)."""
        if self.idle_seconds is None:
            return
        now = time.monotonic()
        for session in list(self.sessions.values()):
            if not session.busy and now - session.last_active > self.idle_seconds:
                logger.info("session %s of server %r idle: ended", session.id[:8], self.relay.name)
                await self._end(session)

    async def _end(self, session: RelaySession) -> None:
        self.sessions.pop(session.id, None)
        await session.close()

    # Requests
    async def _request(self, scope: Scope, send: Send, session: RelaySession, request: jsonrpc.Request) -> None:
        """Serve `request` in this task, answering on its own response (`ResponseStream`)."""
        stream = ResponseStream(send, [(_SESSION, session.id.encode())], KEEPALIVE_SECONDS)
        channel = RequestChannel(session, request.id, stream, progress_token_of(request.params))
        flow = Flow.of(request, session.principal, self.relay.name, protocol_version=session.protocol_version or "",
                       transport="streamable-http", session=channel, scope=scope)  # fmt: skip
        key = str(request.id)
        cancel = RequestCancel()
        session.requests[key] = cancel
        try:
            answer: bytes | None = None
            with stream.kept_alive(), cancel:
                answer, _ = await self.relay.answer(flow)
            if answer is None:  # the agent cancelled it: this era's wire still ends the stream
                answer = jsonrpc.error_bytes(flow.request_id, jsonrpc.REQUEST_CANCELLED, "Request cancelled")
            await stream.finish(answer)
        finally:
            if session.requests.get(key) is cancel:
                del session.requests[key]
            session.last_active = time.monotonic()

    async def _get_stream(self, receive: Receive, send: Send, session: RelaySession) -> None:
        into = session.open_get_stream()
        if into is None:
            await _error(send, 409, "Conflict: Only one SSE stream is allowed per session", session.id)
            return
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [*SSE_HEADERS, (_SESSION, session.id.encode())],
                }
            )
            async with anyio.create_task_group() as tg:

                async def watch_disconnect() -> None:
                    while (await receive())["type"] != "http.disconnect":
                        pass
                    tg.cancel_scope.cancel()

                tg.start_soon(watch_disconnect)
                while True:
                    with anyio.move_on_after(KEEPALIVE_SECONDS * 1.5):
                        try:
                            message, _ = await into.receive()
                        except anyio.EndOfStream:
                            break
                        await send({"type": "http.response.body", "body": sse_event(message), "more_body": True})
                        continue
                    await send({"type": "http.response.body", "body": PING, "more_body": True})
                tg.cancel_scope.cancel()
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            pass  # the agent went away
        finally:
            session.close_get_stream(into)


async def _error(
    send: Send,
    status: int,
    message: str,
    session_id: str | None = None,
    code: int = jsonrpc.INVALID_REQUEST,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    headers = [(b"content-type", b"application/json"), *(extra or [])]
    if session_id is not None:
        headers.append((_SESSION, session_id.encode("latin-1")))
    await respond(send, status, jsonrpc.error_bytes(None, code, message), headers)


_WANTED = frozenset((_SESSION, _VERSION, b"accept"))


def _headers(scope: Scope) -> dict[bytes, str]:
    return headers_named(scope, _WANTED)


def _owner(scope: Scope) -> str:
    principal = scope["bastion.principal"]
    return str(principal.credential_id or principal.agent)

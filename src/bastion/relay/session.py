"""An agent's session with the relay (handshake era), and each request's channel back to the agent.

A `RelaySession` is what `Mcp-Session-Id` names: bound to the credential that opened it,
it holds the agent's GET stream (server notifications, server-to-client requests not tied
to a call), the agent's requests in flight (so `notifications/cancelled` finds them) and
the server-to-client requests awaiting the agent's answer. It is what the `DownstreamHub`
routes to (`AgentConnection`); each request's `RequestChannel` is the hub's `AgentChannel`.
A 2026-07-28 request has no session: its `ModernChannel` carries progress only.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any, Protocol

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from pydantic import BaseModel

from bastion.mcp_names import INTERNAL_ERROR
from bastion.model import Principal
from bastion.relay import jsonrpc
from bastion.relay.jsonrpc import RequestId
from bastion.relay.request_cancel import RequestCancel
from bastion.rpc_error import RpcError

logger = logging.getLogger(__name__)

OutMessage = tuple[bytes, bool]
"""An encoded message for the agent, and whether it is the answer that ends its stream."""


class Outbox(Protocol):
    """Where messages for the agent go: a memory stream (HTTP), or the agent's stdout (stdio)."""

    async def send(self, item: OutMessage, /) -> None: ...


_BUFFER = 64
"""Messages a stream holds for an agent that reads slowly, before the sender waits."""


@dataclass(eq=False)
class _Pending:
    """A server-to-client request waiting for the agent's answer."""

    done: anyio.Event = field(default_factory=anyio.Event)
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None


class RelaySession:
    """One handshake-era agent session (`Mcp-Session-Id`)."""

    has_standalone_channel = True

    def __init__(self, session_id: str, owner: str, principal: Principal) -> None:
        self.id = session_id
        self.owner = owner
        """The credential that opened it: only it may use the session."""
        self.principal = principal
        self.protocol_version: str | None = None
        """The version the handshake agreed (None until `initialize` has succeeded)."""
        self.initialized_notice = False
        """Whether the agent sent `notifications/initialized` (which opens the session, as a handshake does)."""
        self.exit_stack = AsyncExitStack()
        """Callbacks run when the session ends (the hub forgets the agent)."""
        self.closed = False
        self.last_active = time.monotonic()
        self.requests: dict[str, RequestCancel] = {}
        """The agent's requests in flight, by `str(id)` (the key the SDK uses too)."""
        self._get_stream: MemoryObjectSendStream[OutMessage] | None = None
        self._pending: dict[RequestId, _Pending] = {}
        self._ids = itertools.count(1)

    # The GET stream
    def open_get_stream(self) -> MemoryObjectReceiveStream[OutMessage] | None:
        """The receiving end of a new GET stream; None when one is open already."""
        if self._get_stream is not None:
            return None
        send, receive = anyio.create_memory_object_stream[OutMessage](_BUFFER)
        self._get_stream = send
        return receive

    def close_get_stream(self, receive: MemoryObjectReceiveStream[OutMessage]) -> None:
        if self._get_stream is not None:
            self._get_stream.close()
            self._get_stream = None
        receive.close()

    def _to_get_stream(self, message: bytes) -> bool:
        stream = self._get_stream
        if stream is None:
            return False
        try:
            stream.send_nowait((message, False))
        except anyio.WouldBlock:
            logger.warning("session %s: the agent's GET stream is full; a server message was dropped", self.id[:8])
            return False
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            return False
        return True

    # What the hub calls (`AgentConnection`)
    async def notify(self, method: str, params: Any) -> None:
        """A server notification for this agent (list changed, log message, resource updated)."""
        self._to_get_stream(jsonrpc.notification_bytes(method, params))

    # Server-to-client requests
    async def request_agent(self, method: str, params: dict[str, Any] | None, stream: Outbox | None) -> dict[str, Any]:
        """Send a request to the agent, on `stream` (a call's) or else the GET stream; its result."""
        request_id = next(self._ids)
        message = jsonrpc.request_bytes(request_id, method, params)
        pending = self._pending[request_id] = _Pending()
        try:
            sent = False
            if stream is not None:
                try:
                    await stream.send((message, False))
                    sent = True
                except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                    sent = False
            if not sent and not self._to_get_stream(message):
                raise RpcError(INTERNAL_ERROR, f"Bastion: no open stream to the agent for {method!r}")
            await pending.done.wait()
        finally:
            self._pending.pop(request_id, None)
        if pending.error is not None:
            from mcp_types import ErrorData  # the protocol-wide models: not loaded by a wrap's start

            raise RpcError.from_error_data(ErrorData.model_validate(pending.error))
        return pending.result or {}

    def answer(self, response: jsonrpc.Response) -> None:
        """The agent's answer to a server-to-client request (an unknown id is dropped, as the SDK does)."""
        pending = self._pending.get(response.id)
        if pending is None:
            logger.debug("session %s: an answer to no pending request (%r)", self.id[:8], response.id)
            return
        pending.result, pending.error = response.result, response.error
        pending.done.set()

    def cancel(self, request_id: Any) -> None:
        scope = self.requests.get(str(request_id)) if isinstance(request_id, str | int) else None
        if scope is not None:
            scope.cancel()

    @property
    def busy(self) -> bool:
        return bool(self.requests) or self._get_stream is not None

    @property
    def initialize_accepted(self) -> bool:
        """Whether requests are served (the SDK's gate): `initialize` succeeded, or `notifications/initialized` came."""
        return self.protocol_version is not None or self.initialized_notice

    async def close(self) -> None:
        """End the session: its requests are cancelled, its streams closed, the hub told."""
        if self.closed:
            return
        self.closed = True
        for scope in list(self.requests.values()):
            scope.cancel()
        if self._get_stream is not None:
            self._get_stream.close()
            self._get_stream = None
        for pending in self._pending.values():
            pending.error = {"code": INTERNAL_ERROR, "message": "Bastion: the agent's session ended"}
            pending.done.set()
        with anyio.CancelScope(shield=True):
            await self.exit_stack.aclose()


class RequestChannel:
    """One agent request's channel back: progress and server-to-client requests tied to it."""

    can_send_request = True

    def __init__(
        self,
        session: RelaySession,
        request_id: RequestId,
        stream: Outbox,
        progress_token: str | int | None,
    ) -> None:
        self.session = session
        self.request_id = request_id
        self.stream = stream
        self.progress_token = progress_token

    async def report_progress(self, progress: float, total: float | None = None, message: str | None = None) -> None:
        await send_progress(self.stream, self.progress_token, progress, total, message)

    async def send_request(self, request: Any, result_type: Any, *, metadata: Any = None) -> Any:
        """The hub's server-to-client request (an SDK model), sent on this call's stream when
        `metadata` ties it to the call, else on the session's GET stream; the agent's result, validated."""
        body = (
            request.model_dump(by_alias=True, mode="json", exclude_none=True)
            if isinstance(request, BaseModel)
            else dict(request)
        )
        related = getattr(metadata, "related_request_id", None) is not None
        result = await self.session.request_agent(
            str(body["method"]), body.get("params"), self.stream if related else None
        )
        return (
            result_type.model_validate(result)
            if isinstance(result_type, type) and issubclass(result_type, BaseModel)
            else result
        )


class ModernChannel:
    """A 2026-era request's channel back: progress only (the era has no server-to-client requests)."""

    can_send_request = False
    session = None

    def __init__(self, stream: Outbox, progress_token: str | int | None) -> None:
        self.stream = stream
        self.progress_token = progress_token

    async def report_progress(self, progress: float, total: float | None = None, message: str | None = None) -> None:
        await send_progress(self.stream, self.progress_token, progress, total, message)

    async def send_request(self, request: Any, result_type: Any, *, metadata: Any = None) -> Any:
        raise AssertionError("a 2026-era request has no channel for server-to-client requests")


async def send_progress(
    stream: Outbox, token: str | int | None, progress: float, total: float | None, message: str | None
) -> None:
    """A progress notification for the request that gave `token` (none without one) on its stream.
    When the agent went away, or the call ended, progress has nowhere to go: dropped."""
    if token is None:
        return
    with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
        await stream.send((jsonrpc.progress_bytes(token, progress, total, message), False))


def idle_deadline(session: RelaySession, idle_seconds: float | None) -> float:
    """When `session` expires if nothing happens on it (inf: never, or busy now)."""
    if idle_seconds is None or session.busy:
        return math.inf
    return session.last_active + idle_seconds

"""What the front doors with one long agent session per connection share: stdio (`bastion wrap`)
and legacy HTTP+SSE. Messages arrive one by one (a line, a POST), parsed once; everything for
the agent goes out on the session's `out`, in order.

- `initialize` is answered before the next message is taken (the SDK answers it inline too);
  every other request runs in a task of its own, so requests overlap;
- notifications go to the relay (`FlowServer.notified`: cancellation, roots changed); a
  cancelled request is never answered, as the SDK's servers on these transports do; before
  the handshake (`initialize`, or `notifications/initialized`) only cancellation is heeded;
- the agent's answers to server-to-client requests are matched to them by id;
- a request whose id (as a string) is already in flight is refused at once, as the SDK path
  refuses it (`CallRecorder`): it would share the first one's cancellation.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

import anyio

from bastion.model import Principal
from bastion.proxy.proxy import progress_token_of
from bastion.relay import jsonrpc
from bastion.relay.flow import Flow
from bastion.relay.flow_server import FlowServer
from bastion.relay.request_cancel import RequestCancel
from bastion.relay.session import Outbox, RelaySession, RequestChannel

logger = logging.getLogger(__name__)

Start = Callable[[Coroutine[Any, Any, None]], None]
"""Runs a request's answering in a task of its own (`RequestTasks.start`, or a task group's)."""


class OutboxSession(RelaySession):
    """A session whose messages for the agent all go to one `out` (stdout, an SSE stream)."""

    def __init__(self, session_id: str, owner: str, principal: Principal, out: Outbox) -> None:
        super().__init__(session_id, owner, principal)
        self.out = out

    async def notify(self, method: str, params: Any) -> None:
        try:
            await self.out.send((jsonrpc.notification_bytes(method, params), False))
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            logger.debug("session %s: the agent's stream is closed: %r not delivered", self.id[:8], method)

    async def request_agent(self, method: str, params: dict[str, Any] | None, stream: Outbox | None) -> dict[str, Any]:
        return await super().request_agent(method, params, stream if stream is not None else self.out)

    @property
    def busy(self) -> bool:
        return True  # it lasts as long as its connection


class SessionFront:
    """Routes one session's messages through `relay`, under `transport` (as the audit names it)."""

    def __init__(self, relay: FlowServer, transport: str) -> None:
        self.relay = relay
        self.transport = transport

    async def receive(
        self, start: Start, session: OutboxSession, message: jsonrpc.Message, scope: Mapping[str, Any] | None = None
    ) -> None:
        """One message from the agent (`scope`: the HTTP request that carried it, for its trace);
        a request other than `initialize` is answered in a task of its own, handed to `start`."""
        if isinstance(message, jsonrpc.Request):
            if message.method == "initialize":
                await self.request(session, message, scope)
            else:
                start(self.request(session, message, scope))
        elif isinstance(message, jsonrpc.Response):
            session.answer(message)
        else:
            if message.method == "notifications/initialized":
                session.initialized_notice = True
            elif not session.initialize_accepted and message.method != "notifications/cancelled":
                return  # the SDK's server drops it too: the session is not open yet
            await self.relay.notified(session, message)

    async def request(
        self, session: OutboxSession, request: jsonrpc.Request, scope: Mapping[str, Any] | None = None
    ) -> None:
        """A handshake-era request, answered on `session.out`."""
        params = request.params
        progress_token = progress_token_of(params)
        channel = RequestChannel(session, request.id, session.out, progress_token)
        flow = Flow.of(request, session.principal, self.relay.name, protocol_version=session.protocol_version or "",
                       transport=self.transport, session=channel, scope=scope)  # fmt: skip
        await self.answer(session, flow)

    async def answer(self, session: OutboxSession, flow: Flow) -> None:
        """`flow`'s request answered on `session.out`, or never once the agent cancelled it; one
        whose id is already in flight on the session is refused at once."""
        request_id = flow.request_id
        assert request_id is not None
        key = str(request_id)
        if key in session.requests:
            await self._refuse_duplicate(session, request_id)
            return
        cancel = RequestCancel()
        session.requests[key] = cancel
        answer: bytes | None = None
        try:
            with cancel:
                answer, _ = await self.relay.answer(flow)
        finally:
            if session.requests.get(key) is cancel:
                del session.requests[key]
        if answer is None:
            return  # the agent cancelled it: never answered
        await deliver(session, answer, "the answer to", request_id)

    async def _refuse_duplicate(self, session: OutboxSession, request_id: jsonrpc.RequestId) -> None:
        message = (
            f"Bastion: a request with id {json.dumps(request_id)[:80]} is already in flight on this "
            "session: use a new id for each request (the first one is still being answered)"
        )
        refusals = self.relay.audit.recorder.refusals
        if refusals is not None:
            refusals.refused(
                "duplicate_id",
                409,
                agent=session.principal.agent,
                server=self.relay.name,
                path=self.transport,
                detail=message,
            )
        refusal = jsonrpc.error_bytes(request_id, jsonrpc.INVALID_REQUEST, message)
        await deliver(session, refusal, "the refusal of", request_id)


async def deliver(session: OutboxSession, message: bytes, what: str, request_id: jsonrpc.RequestId) -> None:
    """`message`, the answer to request `request_id`, on the agent's stream; dropped (logged, as
    `what` it is) when the agent has gone."""
    try:
        await session.out.send((message, True))
    except (anyio.BrokenResourceError, anyio.ClosedResourceError):
        logger.debug("the agent's stream is closed: %s %r not delivered", what, request_id)

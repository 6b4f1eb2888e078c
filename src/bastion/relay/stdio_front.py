"""stdio for the relay: `bastion wrap` of one server, for the one agent on stdin and stdout.

Each line from the agent is parsed once (`jsonrpc`) and routed as the SDK's stdio server
routes it, through the same `Relay.answer` the Streamable HTTP front door uses:

- the whole connection is one `StdioSession` (the local principal, transport `stdio`);
- `initialize` is answered before the next line is read (the SDK answers it inline too);
  every other request runs in a task of its own, so requests overlap: a plain event-loop
  task (a tenth of what an anyio task group's `start_soon` costs, on every call), kept in
  `InFlight` and cancelled, and waited for, when the session ends; a request task that
  fails unexpectedly is logged and the session goes on;
- notifications from the agent go to `Relay.notified` (cancellation, roots changed); a
  cancelled request is never answered, as the SDK's stdio server does;
- the agent's answers to server-to-client requests (sampling, elicitation, roots) are
  matched to the request by id; server notifications and requests are written on stdout;
- a request whose id (as a string) is already in flight is refused at once, as the SDK
  path refuses it (`CallRecorder`): it would share the first one's cancellation;
- every message out is one whole line, handed to the pipe's transport in one synchronous
  write (so lines never interleave, without a lock), then flow control (`drain`);
- a line that is not JSON, or not a JSON-RPC message, is dropped with a log line (the SDK's
  stdio server answers nothing to it either);
- at the end of stdin the requests in flight are cancelled and the session ends.

It serves the handshake era: a connection that does not open with `initialize` (a
2026-07-28 agent: `server/discover`, self-contained requests) is left to the SDK's server
stack (`opens_handshake`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Coroutine
from typing import Any

import anyio

from bastion.gateway.stdio_pipes import PipeLineReader, PipeTextWriter, ReplayedLines
from bastion.model import Principal
from bastion.relay import jsonrpc
from bastion.relay.flow import Flow
from bastion.relay.relay import Relay
from bastion.relay.session import Outbox, OutMessage, RelaySession, RequestChannel

logger = logging.getLogger(__name__)

TRANSPORT = "stdio"


def opens_handshake(line: str) -> bool:
    """Whether `line`, the agent's first, is an `initialize` request (the handshake era, which the relay serves)."""
    try:
        message = jsonrpc.classify(jsonrpc.loads(line))
    except (ValueError, jsonrpc.Invalid):
        return False
    return isinstance(message, jsonrpc.Request) and message.method == "initialize"


class StdioOut:
    """The agent's stdout: one whole line per message (`write_line` hands it to the transport at once)."""

    def __init__(self, writer: PipeTextWriter) -> None:
        self._writer = writer

    async def send(self, item: OutMessage, /) -> None:
        try:
            await self._writer.write_line(item[0])
        except OSError as exc:  # the agent closed its end
            raise anyio.BrokenResourceError from exc


class InFlight:
    """The agent's requests being answered, each a plain task on the event loop."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            logger.error("answering a request on stdio failed", exc_info=exc)

    async def cancel_all(self) -> None:
        """Cancel what is still running and wait until it has ended."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            with anyio.CancelScope(shield=True):
                await asyncio.wait(tasks)


class StdioSession(RelaySession):
    """The agent's one session over stdio: everything for it goes to stdout."""

    def __init__(self, principal: Principal, out: StdioOut) -> None:
        super().__init__(uuid.uuid4().hex, TRANSPORT, principal)
        self.out = out

    async def notify(self, method: str, params: Any) -> None:
        try:
            await self.out.send((jsonrpc.notification_bytes(method, params), False))
        except anyio.BrokenResourceError:
            logger.debug("the agent's stdout is closed: %r not delivered", method)

    async def request_agent(self, method: str, params: dict[str, Any] | None, stream: Outbox | None) -> dict[str, Any]:
        return await super().request_agent(method, params, stream if stream is not None else self.out)

    @property
    def busy(self) -> bool:
        return True  # never idle: it lasts as long as stdin


class StdioFront:
    """Serves one server's relay to the agent on stdin and stdout."""

    def __init__(self, relay: Relay, principal: Principal) -> None:
        self.relay = relay
        self.principal = principal

    async def serve(self, stdin: PipeLineReader | ReplayedLines, stdout: PipeTextWriter) -> None:
        """Until the end of stdin."""
        session = StdioSession(self.principal, StdioOut(stdout))
        in_flight = InFlight()
        try:
            async for line in stdin:
                await self._receive(in_flight, session, line)
        finally:
            await in_flight.cancel_all()  # the agent is gone: nothing in flight has anyone to answer
            await session.close()

    async def _receive(self, in_flight: InFlight, session: StdioSession, line: str) -> None:
        if not line.strip():
            return
        try:
            message = jsonrpc.classify(jsonrpc.loads(line))
        except (ValueError, jsonrpc.Invalid) as exc:
            logger.warning("the agent sent a line that is not a JSON-RPC message (dropped): %s", exc)
            return
        if isinstance(message, jsonrpc.Request):
            if message.method == "initialize":
                await self._request(session, message)
            else:
                in_flight.start(self._request(session, message))
        elif isinstance(message, jsonrpc.Response):
            session.answer(message)
        else:
            await self.relay.notified(session, message)

    async def _request(self, session: StdioSession, request: jsonrpc.Request) -> None:
        params = request.params
        meta = params.get("_meta") if params is not None else None
        token = meta.get("progressToken") if isinstance(meta, dict) else None
        progress_token = token if isinstance(token, str | int) and not isinstance(token, bool) else None
        flow = Flow(
            principal=session.principal,
            server=self.relay.name,
            endpoint=None,
            method=request.method,
            request_id=request.id,
            params=params,
            protocol_version=session.protocol_version or "",
            transport=TRANSPORT,
            session=RequestChannel(session, request.id, session.out, progress_token),
        )
        key = str(request.id)
        if key in session.requests:
            await self._refuse_duplicate(session, request.id)
            return
        cancel = anyio.CancelScope()
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
        try:
            await session.out.send((answer, True))
        except anyio.BrokenResourceError:
            logger.debug("the agent's stdout is closed: the answer to %r not delivered", request.id)

    async def _refuse_duplicate(self, session: StdioSession, request_id: jsonrpc.RequestId) -> None:
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
                path=TRANSPORT,
                detail=message,
            )
        try:
            await session.out.send((jsonrpc.error_bytes(request_id, jsonrpc.INVALID_REQUEST, message), True))
        except anyio.BrokenResourceError:
            logger.debug("the agent's stdout is closed: the refusal of %r not delivered", request_id)

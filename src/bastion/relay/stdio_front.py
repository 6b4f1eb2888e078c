"""stdio for the relay: `bastion wrap` of one server (or `--all`), for the one agent on stdin and stdout.

Each line from the agent is parsed once (`jsonrpc`) and answered by the relay, in either
protocol era, as the SDK's stdio server answers it (`Server.run`, the reference path):

- the agent's first request decides the connection's era, once (`Opening`): one that is not
  `initialize` and carries the 2026-07-28 envelope (`envelope.carries_envelope`) opens a
  2026-era connection, anything else a handshake-era one. What came before it (up to eight
  lines) is replayed into the era chosen; later ones are dropped;
- handshake era: routed as on legacy HTTP+SSE (`session_front.SessionFront`), the whole
  connection one `StdioSession` (the local principal, transport `stdio`); a request carrying
  the 2026 envelope is refused (INVALID_REQUEST), unrecorded;
- 2026 era: each request stands alone. `initialize` is refused (UNSUPPORTED_PROTOCOL_VERSION),
  and so is a request whose envelope does not hold (`envelope.served_version`), unrecorded;
  the others (`server/discover` too) are answered through the relay's `answer` with a
  progress-only channel (`session.ModernChannel`). Of the agent's notifications only
  `notifications/cancelled` means anything in the era; the others are dropped;
- a request is answered in a plain event-loop task (`request_tasks.RequestTasks`: a tenth of
  what an anyio task group's `start_soon` costs; a handshake-era `initialize` is answered
  before the next line is read); one that fails unexpectedly is logged and the session goes on;
  a request whose id is already in flight is refused at once, in both eras;
- every message out is one whole line, handed to the pipe's transport in one synchronous
  write (so lines never interleave, without a lock), then flow control (`drain`);
- a line that is not JSON, or not a JSON-RPC message, is dropped with a log line (the SDK's
  stdio server answers nothing to it either);
- at the end of stdin the requests in flight are cancelled, and waited for, and the session ends.
"""

from __future__ import annotations

import logging
import uuid

import anyio

from bastion.model import Principal
from bastion.proxy.proxy import progress_token_of
from bastion.relay import envelope, jsonrpc
from bastion.relay.flow import Flow
from bastion.relay.flow_server import FlowServer
from bastion.relay.request_tasks import RequestTasks
from bastion.relay.session import ModernChannel, OutMessage
from bastion.relay.session_front import OutboxSession, SessionFront, deliver
from bastion.stdio_pipes import PipeLineReader, PipeTextWriter

logger = logging.getLogger(__name__)

TRANSPORT = "stdio"
OPENING_LINES = 8
"""Lines kept before the agent's first request, to replay once it has decided the era (the SDK's limit)."""


class Opening:
    """The connection's era, decided by the agent's first request as the SDK's server decides it."""

    def __init__(self) -> None:
        self.modern: bool | None = None
        """None until the first request; then whether it opened the 2026-07-28 era."""
        self._lead: list[jsonrpc.Message] = []
        self._lines = 0

    def take(self, message: jsonrpc.Message | None) -> list[jsonrpc.Message]:
        """What to serve now, `message` being the next line's (None: not a message): nothing
        until the first request, then what was kept before it, and it."""
        if isinstance(message, jsonrpc.Request):
            self.modern = message.method != "initialize" and envelope.carries_envelope(message.params)
            lead, self._lead = self._lead, []
            return [*lead, message]
        if self._lines >= OPENING_LINES:
            logger.debug("a line before the agent's first request was dropped: %r", message)
            return []
        self._lines += 1
        if message is not None:
            self._lead.append(message)
        return []


class StdioOut:
    """The agent's stdout: one whole line per message (`write_line` hands it to the transport at once)."""

    def __init__(self, writer: PipeTextWriter) -> None:
        self._writer = writer

    async def send(self, item: OutMessage, /) -> None:
        try:
            await self._writer.write_line(item[0])
        except OSError as exc:  # the agent closed its end
            raise anyio.BrokenResourceError from exc


class StdioSession(OutboxSession):
    """The agent's one session over stdio: everything for it goes to stdout."""

    def __init__(self, principal: Principal, out: StdioOut) -> None:
        super().__init__(uuid.uuid4().hex, TRANSPORT, principal, out)


class StdioFront(SessionFront):
    """Serves one server's relay (or the aggregate's) to the agent on stdin and stdout."""

    def __init__(self, relay: FlowServer, principal: Principal) -> None:
        super().__init__(relay, TRANSPORT)
        self.principal = principal

    async def serve(self, stdin: PipeLineReader, stdout: PipeTextWriter) -> None:
        """Until the end of stdin."""
        session = StdioSession(self.principal, StdioOut(stdout))
        tasks = RequestTasks()
        opening = Opening()
        try:
            async for line in stdin:
                message = _parsed(line)
                if opening.modern is None:
                    for taken in opening.take(message):
                        await self._route(tasks, session, taken, modern=bool(opening.modern))
                elif message is not None:
                    await self._route(tasks, session, message, modern=opening.modern)
        finally:
            await tasks.cancel_all()  # the agent is gone: nothing in flight has anyone to answer
            await session.close()

    async def _route(
        self, tasks: RequestTasks, session: StdioSession, message: jsonrpc.Message, *, modern: bool
    ) -> None:
        if modern:
            await self._modern(tasks, session, message)
        elif (
            isinstance(message, jsonrpc.Request)
            and message.method != "initialize"
            and envelope.carries_envelope(message.params)
        ):
            refusal = envelope.Rejection(jsonrpc.INVALID_REQUEST, envelope.HANDSHAKE_ENVELOPE_REFUSED)
            await deliver(session, refusal.error_bytes(message.id), "the refusal of", message.id)
        else:
            await self.receive(tasks.start, session, message)

    async def _modern(self, tasks: RequestTasks, session: StdioSession, message: jsonrpc.Message) -> None:
        """One message of a 2026-era connection."""
        if isinstance(message, jsonrpc.Request):
            tasks.start(self._modern_request(session, message))
        elif isinstance(message, jsonrpc.Response):
            session.answer(message)  # the era has no server-to-client requests: dropped
        elif message.method == "notifications/cancelled":
            session.cancel((message.params or {}).get("requestId"))

    async def _modern_request(self, session: StdioSession, request: jsonrpc.Request) -> None:
        version = envelope.served_version(request.method, request.params)
        if isinstance(version, envelope.Rejection):
            await deliver(session, version.error_bytes(request.id), "the refusal of", request.id)
            return
        channel = ModernChannel(session.out, progress_token_of(request.params))
        flow = Flow.of(request, session.principal, self.relay.name, protocol_version=version,
                       transport=self.transport, session=channel)  # fmt: skip
        await self.answer(session, flow)


def _parsed(line: str) -> jsonrpc.Message | None:
    """The message a line holds; None (logged) for a blank line or one that is not a JSON-RPC message."""
    if not line.strip():
        return None
    try:
        return jsonrpc.classify(jsonrpc.loads(line))
    except (ValueError, jsonrpc.Invalid) as exc:
        logger.warning("the agent sent a line that is not a JSON-RPC message (dropped): %s", exc)
        return None

"""stdio for the relay: `bastion wrap` of one server, for the one agent on stdin and stdout.

Each line from the agent is parsed once (`jsonrpc`) and routed as the SDK's stdio server
routes it (`session_front.SessionFront`, shared with legacy HTTP+SSE), through the same
`answer` the Streamable HTTP front door uses:

- the whole connection is one `StdioSession` (the local principal, transport `stdio`);
- server notifications and requests are written on stdout;
- a request other than `initialize` is answered in a plain event-loop task
  (`request_tasks.RequestTasks`: a tenth of what an anyio task group's `start_soon` costs);
  one that fails unexpectedly is logged and the session goes on;
- every message out is one whole line, handed to the pipe's transport in one synchronous
  write (so lines never interleave, without a lock), then flow control (`drain`);
- a line that is not JSON, or not a JSON-RPC message, is dropped with a log line (the SDK's
  stdio server answers nothing to it either);
- at the end of stdin the requests in flight are cancelled, and waited for, and the session ends.

It serves the handshake era: a connection that does not open with `initialize` (a
2026-07-28 agent: `server/discover`, self-contained requests) is left to the SDK's server
stack (`opens_handshake`).
"""

from __future__ import annotations

import logging
import uuid

import anyio

from bastion.model import Principal
from bastion.relay import jsonrpc
from bastion.relay.flow_server import FlowServer
from bastion.relay.request_tasks import RequestTasks
from bastion.relay.session import OutMessage
from bastion.relay.session_front import OutboxSession, SessionFront
from bastion.stdio_pipes import PipeLineReader, PipeTextWriter, ReplayedLines

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


class StdioSession(OutboxSession):
    """The agent's one session over stdio: everything for it goes to stdout."""

    def __init__(self, principal: Principal, out: StdioOut) -> None:
        super().__init__(uuid.uuid4().hex, TRANSPORT, principal, out)


class StdioFront(SessionFront):
    """Serves one server's relay (or the aggregate's) to the agent on stdin and stdout."""

    def __init__(self, relay: FlowServer, principal: Principal) -> None:
        super().__init__(relay, TRANSPORT)
        self.principal = principal

    async def serve(self, stdin: PipeLineReader | ReplayedLines, stdout: PipeTextWriter) -> None:
        """Until the end of stdin."""
        session = StdioSession(self.principal, StdioOut(stdout))
        tasks = RequestTasks()
        try:
            async for line in stdin:
                await self._line(tasks, session, line)
        finally:
            await tasks.cancel_all()  # the agent is gone: nothing in flight has anyone to answer
            await session.close()

    async def _line(self, tasks: RequestTasks, session: StdioSession, line: str) -> None:
        if not line.strip():
            return
        try:
            message = jsonrpc.classify(jsonrpc.loads(line))
        except (ValueError, jsonrpc.Invalid) as exc:
            logger.warning("the agent sent a line that is not a JSON-RPC message (dropped): %s", exc)
            return
        await self.receive(tasks.start, session, message)

"""stdio for the relay: `bastion wrap` of one server, for the one agent on stdin and stdout.

Each line from the agent is parsed once (`jsonrpc`) and routed as the SDK's stdio server
routes it (`session_front.SessionFront`, shared with legacy HTTP+SSE), through the same
`answer` the Streamable HTTP front door uses:

- the whole connection is one `StdioSession` (the local principal, transport `stdio`);
- server notifications and requests are written on stdout;
- every message out is one whole line, written under a lock;
- a line that is not JSON, or not a JSON-RPC message, is dropped with a log line (the SDK's
  stdio server answers nothing to it either);
- at the end of stdin the requests in flight are cancelled and the session ends.

It serves the handshake era: a connection that does not open with `initialize` (a
2026-07-28 agent: `server/discover`, self-contained requests) is left to the SDK's server
stack (`opens_handshake`).
"""

from __future__ import annotations

import logging
import uuid

import anyio
from anyio.abc import TaskGroup

from bastion.model import Principal
from bastion.relay import jsonrpc
from bastion.relay.flow_server import FlowServer
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
    """The agent's stdout: one whole line per message, one writer at a time."""

    def __init__(self, writer: PipeTextWriter) -> None:
        self._writer = writer
        self._lock = anyio.Lock()

    async def send(self, item: OutMessage, /) -> None:
        async with self._lock:
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
        try:
            async with anyio.create_task_group() as tg:
                async for line in stdin:
                    await self._line(tg, session, line)
                tg.cancel_scope.cancel()  # the agent is gone: nothing in flight has anyone to answer
        finally:
            await session.close()

    async def _line(self, tg: TaskGroup, session: StdioSession, line: str) -> None:
        if not line.strip():
            return
        try:
            message = jsonrpc.classify(jsonrpc.loads(line))
        except (ValueError, jsonrpc.Invalid) as exc:
            logger.warning("the agent sent a line that is not a JSON-RPC message (dropped): %s", exc)
            return
        await self.receive(tg, session, message)

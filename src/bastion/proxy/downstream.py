"""The agents connected to one upstream, and how server-initiated messages find them.

One upstream session is shared by many agents, so a message the server starts (a
sampling request, a log line, a list-changed notice) has to be routed:

- notifications that concern everyone (list changed, log messages) go to every
  connected agent session; `resources/updated` only to the sessions that subscribed;
- a server-to-client request goes to the agent whose call is in flight. When that is
  ambiguous (calls from several agents in flight at once, over a transport that does not
  say which call a request belongs to) the request is refused rather than risk showing
  one agent's data to another.
"""

from __future__ import annotations

import itertools
import logging
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel

from bastion.lazy_import import lazy_module
from bastion.mcp_names import INVALID_REQUEST, MODERN_PROTOCOL_VERSIONS
from bastion.model import Principal
from bastion.rpc_error import RpcError
from bastion.upstream.wire import RequestId

if TYPE_CHECKING:
    import mcp_types as types
else:  # the protocol-wide models: a quarter of a wrap's start, loaded by their first use
    types = lazy_module("mcp_types")

logger = logging.getLogger(__name__)


def _server_requests() -> dict[str, tuple[type[BaseModel], type[BaseModel]]]:
    """The server-to-client requests relayed to an agent: method -> (request model, result model)."""
    return {
        "sampling/createMessage": (types.CreateMessageRequest, types.CreateMessageResult),
        "elicitation/create": (types.ElicitRequest, types.ElicitResult),
        "roots/list": (types.ListRootsRequest, types.ListRootsResult),
    }


class AgentConnection(Protocol):
    """One agent connection (the SDK's `Connection`, or a relay session): what the hub reads of it."""

    @property
    def has_standalone_channel(self) -> bool: ...

    @property
    def protocol_version(self) -> str | None: ...

    @property
    def exit_stack(self) -> AsyncExitStack: ...

    async def notify(self, method: str, params: Any) -> None: ...


class AgentChannel(Protocol):
    """Where a server-to-client request is sent (the SDK's per-request `ServerSession`, or the relay's)."""

    @property
    def can_send_request(self) -> bool: ...

    async def send_request(self, request: Any, result_type: Any, *, metadata: Any = None) -> Any: ...


@dataclass(eq=False)
class AgentSession:
    """One connected agent session (a legacy-era connection with a channel back to the agent)."""

    connection: AgentConnection
    principal: Principal
    session: AgentChannel
    subscriptions: set[str] = field(default_factory=set)


@dataclass(eq=False)
class InFlight:
    """A request forwarded upstream and not yet answered."""

    agent: AgentSession | None
    session: AgentChannel
    request_id: RequestId | None


class DownstreamHub:
    """The agent sessions and in-flight requests of one upstream."""

    def __init__(self, server_name: str) -> None:
        self.server_name = server_name
        self._agents: dict[int, AgentSession] = {}
        self._in_flight: dict[int, InFlight] = {}
        self._ids = itertools.count()

    def join(self, connection: AgentConnection, principal: Principal, session: AgentChannel) -> AgentSession | None:
        """Register the connection a request came in on; `None` for connections with no back-channel."""
        if not connection.has_standalone_channel or connection.protocol_version in MODERN_PROTOCOL_VERSIONS:
            return None
        key = id(connection)
        agent = self._agents.get(key)
        if agent is None:
            agent = AgentSession(connection, principal, session)
            self._agents[key] = agent
            connection.exit_stack.callback(self._agents.pop, key, None)
        else:
            agent.session = session
        return agent

    @property
    def agent_count(self) -> int:
        return len(self._agents)

    def begin(self, agent: AgentSession | None, session: AgentChannel, request_id: RequestId | None) -> int:
        token = next(self._ids)
        self._in_flight[token] = InFlight(agent, session, request_id)
        return token

    def end(self, token: int) -> None:
        self._in_flight.pop(token, None)

    async def broadcast(self, method: str, params: dict[str, Any]) -> None:
        """Deliver an upstream notification to the sessions it concerns."""
        if method == "notifications/resources/updated":
            uri = params.get("uri")
            targets = [a for a in self._agents.values() if uri in a.subscriptions]
        else:
            targets = list(self._agents.values())
        for agent in targets:
            await agent.connection.notify(method, params)

    async def relay_request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """Send a server-to-client request to the one agent it can belong to."""
        kinds = _server_requests().get(method)
        if kinds is None:
            raise RpcError(INVALID_REQUEST, f"Bastion does not relay {method!r}")
        request_type, result_type = kinds
        request = request_type.model_validate({"method": method, "params": params})
        target = self._target()
        if target is None:
            if not self._agents and not self._in_flight:
                why = "no agent is connected"
            else:
                why = f"{len(self._in_flight)} requests from several agents are in flight"
            raise RpcError(INVALID_REQUEST, f"Bastion cannot route {method!r} to an agent: {why}")
        session, related = target
        metadata = None
        if related is not None:  # the SDK's type (its sessions read it); the relay's reads the id only
            from mcp.shared.message import ServerMessageMetadata

            metadata = ServerMessageMetadata(related_request_id=related)
        result = await session.send_request(request, result_type, metadata=metadata)
        dumped: dict[str, Any] = result.model_dump(by_alias=True, mode="json", exclude_none=True)
        return dumped

    def _target(self) -> tuple[AgentChannel, RequestId | None] | None:
        in_flight = list(self._in_flight.values())
        if len(in_flight) == 1 and in_flight[0].session.can_send_request:
            only = in_flight[0]
            return only.session, only.request_id
        agents = {id(f.agent) for f in in_flight if f.agent is not None}
        if len(agents) == 1 and all(f.agent is not None for f in in_flight):
            agent = in_flight[0].agent
            assert agent is not None
            return agent.session, None
        if not in_flight and len(self._agents) == 1:
            (agent,) = self._agents.values()
            return agent.session, None
        return None

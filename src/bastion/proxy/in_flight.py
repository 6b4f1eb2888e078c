"""The requests in flight on each upstream server, so what a server does can be tied to a call.

A sandboxed server has no way to say which call made it open a connection: the egress proxy
only knows the server. The call recorder registers every request it forwards here while it
runs (a `tools/call` only once the guard let it through: one held for approval has not
reached the server and cannot be blamed). When the proxy blocks a connection, the
runtime's audited sink (`runtime/audit_events.py`) asks which calls were in flight on that
server, names them in the `egress.blocked` event (`ambiguous` when there are several) and
notes the blocked host on each, for their `call.completed` records.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_BLOCKED_PER_CALL = 32
"""Hosts noted per call; each attempt has its own `egress.blocked` event all the same."""


@dataclass(eq=False, slots=True)
class InFlightCall:
    """One request being served on an upstream server."""

    call_id: str
    agent: str | None
    server: str
    tool: str | None
    egress_blocked: list[str] = field(default_factory=list)
    """`host:port` of each connection the egress proxy refused while this call ran."""

    def as_dict(self) -> dict[str, str | None]:
        return {"agent": self.agent, "correlation_id": self.call_id, "tool": self.tool}


@dataclass(frozen=True, slots=True)
class Attribution:
    """The calls an upstream event happened during; `ambiguous` when there were several."""

    calls: tuple[InFlightCall, ...]

    @property
    def ambiguous(self) -> bool:
        return len(self.calls) > 1

    @property
    def only(self) -> InFlightCall | None:
        return self.calls[0] if len(self.calls) == 1 else None

    @property
    def agent(self) -> str | None:
        """The agent, when every call in flight was made by the same one."""
        agents = {call.agent for call in self.calls}
        return agents.pop() if len(agents) == 1 else None

    @property
    def tool(self) -> str | None:
        """The tool, when every call in flight names the same one."""
        tools = {call.tool for call in self.calls}
        return tools.pop() if len(tools) == 1 else None


class InFlightCalls:
    """The registry, shared by the call recorder (writer) and the runtime's audited sink (reader).

    Everything runs on the gateway's event loop, so there is no lock: `begin`, `end` and
    `attribute` never await.
    """

    def __init__(self) -> None:
        self._by_server: dict[str, dict[str, InFlightCall]] = {}

    def begin(self, call: InFlightCall) -> None:
        """`call` is on its way to the server (for a `tools/call`: once the guard let it through)."""
        self._by_server.setdefault(call.server, {})[call.call_id] = call

    def end(self, call: InFlightCall) -> None:
        """`call` has ended (whether or not it ever began)."""
        calls = self._by_server.get(call.server)
        if calls is None:
            return
        calls.pop(call.call_id, None)
        if not calls:
            del self._by_server[call.server]

    def attribute(self, server: str, blocked: str | None = None) -> Attribution:
        """The calls in flight on `server` now; `blocked` (`host:port`) is noted on each."""
        calls = tuple(self._by_server.get(server, {}).values())
        if blocked is not None:
            for call in calls:
                if blocked not in call.egress_blocked and len(call.egress_blocked) < MAX_BLOCKED_PER_CALL:
                    call.egress_blocked.append(blocked)
        return Attribution(calls)

    def __len__(self) -> int:
        return sum(len(calls) for calls in self._by_server.values())

"""Concurrency caps: how many tool calls each agent, and each server, has in flight here.

Counted in this process only (each replica enforces its own caps); a call over a cap is
refused at once rather than queued, so an agent is never left waiting on another's calls.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from bastion.model import ToolCall


@dataclass
class InFlight:
    """Slots taken by calls between the guard check and the end of their forwarding."""

    per_agent: int | None = None
    per_server: int | None = None
    agents: Counter[str] = field(default_factory=Counter)
    servers: Counter[str] = field(default_factory=Counter)
    _held: dict[str, tuple[str, str]] = field(default_factory=dict)

    def enter(self, call: ToolCall) -> tuple[str, int] | None:
        """Take a slot for `call`, or say which cap is full: (`concurrent_per_agent`, cap)."""
        agent, server = call.principal.agent, call.server
        if self.per_agent is not None and self.agents[agent] >= self.per_agent:
            return "concurrent_per_agent", self.per_agent
        if self.per_server is not None and self.servers[server] >= self.per_server:
            return "concurrent_per_server", self.per_server
        self.agents[agent] += 1
        self.servers[server] += 1
        self._held[call.call_id] = (agent, server)
        return None

    def leave(self, call: ToolCall) -> None:
        """Give back `call`'s slot, if it took one (safe to call twice)."""
        held = self._held.pop(call.call_id, None)
        if held is None:
            return
        agent, server = held
        for counter, key in ((self.agents, agent), (self.servers, server)):
            counter[key] -= 1
            if counter[key] <= 0:
                del counter[key]

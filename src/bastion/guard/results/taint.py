"""What the session remembers: values that untrusted results carried, per agent session and per
agent, for a window.

`TaintStore` is the interface a backend implements: `MemoryTaintStore` keeps the memory in this
process; `RedisTaintStore` (bastion.guard.results.redis_taint) keeps it in the Redis that
`limits.storage` names, so every replica knows what any replica saw.

Each result's values are remembered twice: in the memory of the agent and in the memory of the
MCP session the result went to (a Streamable HTTP `Mcp-Session-Id`, an SSE session, a stdio
connection; the stateless 2026 era has none, so only the agent's). `provenance.scope` says which
memory a later call is checked against. Values the agent itself wrote in an earlier call's
arguments (in any of its sessions) are never tainted by a later result.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal, Protocol, TypeAlias

from bastion.guard.results.owed import Owed

FLAGGED = "flagged as injection"
"""How `TaintSource.why` begins for values from a result a detector flagged."""

Scope: TypeAlias = Literal["both", "session", "agent"]
"""Which memory a call is checked against: its session's and its agent's (`both`), or one of them.
`session` falls back to the agent's memory for a call that has no session."""

MAX_SESSIONS_PER_AGENT = 1000
"""Sessions remembered per agent at most (the least recently used are forgotten first)."""


@dataclass(frozen=True, slots=True)
class TaintSource:
    """The result a remembered value first appeared in."""

    correlation_id: str
    server: str
    tool: str
    why: str
    """`flagged as injection (framing)`, or `from untrusted server`."""
    at: float

    @property
    def flagged(self) -> bool:
        """A detector flagged the result (not only: its server is untrusted)."""
        return self.why.startswith(FLAGGED)


@dataclass(frozen=True, slots=True)
class Whose:
    """Whose memory: an agent, and the session a call or result belongs to (None: no session)."""

    agent: str
    session: str | None = None


class TaintStore(Protocol):
    """Per-agent and per-session memory of tainted values, and of the values the agent wrote itself.

    Every method may raise when the memory cannot be reached: the checks fail closed on it.
    """

    async def note_arguments(self, whose: Whose, values: Iterable[str]) -> None:
        """The agent wrote these values in a call's arguments (now trusted against later results)."""
        ...

    def note_soon(self, whose: Whose, scope: Scope, values: Callable[[], Iterable[str]]) -> bool:
        """When the memories `scope` names remember no tainted value (so no `find` there can match
        now): owe `note_arguments` of what `values()` gives (`owed.Owed`: before this store is next
        read or written, on the event loop's next turn at the latest) and return True. Otherwise, or
        where the store cannot tell without a round trip, do nothing and return False."""
        ...

    async def taint(self, whose: Whose, values: Iterable[str], source: TaintSource) -> list[str]:
        """Remember `values` as coming from `source`, in the agent's and the session's memory, but
        those the agent wrote earlier; returns those kept."""
        ...

    async def find(
        self, whose: Whose, values: Iterable[str], *, scope: Scope = "both", flagged_only: bool = False
    ) -> tuple[str, TaintSource] | None:
        """The first of `values` remembered as tainted in the memories `scope` names, and where it came
        from; `flagged_only`: only values from a result a detector flagged."""
        ...

    async def find_and_note(
        self,
        whose: Whose,
        values: Iterable[str],
        written: Iterable[str],
        *,
        scope: Scope = "both",
        flagged_only: bool = False,
    ) -> tuple[str, TaintSource] | None:
        """`find` over `values`, then `note_arguments` of `written`: one step (one round trip to Redis)."""
        ...

    async def aclose(self) -> None:
        """Release connections (nothing to do in memory)."""
        ...


def memories(whose: Whose, scope: Scope) -> list[str | None]:
    """The memories a call is checked against, in order: a session id, or None for the agent's own."""
    if whose.session is None or scope == "agent":
        return [None]
    if scope == "session":
        return [whose.session]
    return [whose.session, None]


class _Bounded:
    """value -> item, oldest first, at most `size`, each expiring `window` seconds after it was set."""

    def __init__(self, size: int, window: float, clock: Callable[[], float]) -> None:
        self.size = size
        self.window = window
        self.clock = clock
        self.items: OrderedDict[str, tuple[float, TaintSource | None]] = OrderedDict()

    def put(self, value: str, source: TaintSource | None) -> None:
        self.items.pop(value, None)
        self.items[value] = (self.clock(), source)
        while len(self.items) > self.size:
            self.items.popitem(last=False)

    def get(self, value: str) -> tuple[float, TaintSource | None] | None:
        found = self.items.get(value)
        if found is None:
            return None
        if self.clock() - found[0] > self.window:
            del self.items[value]
            return None
        return found


@dataclass(eq=False)
class _AgentMemory:
    written: _Bounded
    tainted: _Bounded
    sessions: OrderedDict[str, _Bounded]


MAX_AGENTS = 10000
"""Agents remembered at most by `MemoryTaintStore` (many JWT subjects must not grow it without bound)."""


class MemoryTaintStore:
    """A `TaintStore` in this process's memory: `max_values` per agent, `max_session_values` per
    session, `max_sessions` sessions per agent and `max_agents` agents at most."""

    def __init__(
        self,
        *,
        window: float,
        max_values: int,
        max_session_values: int | None = None,
        max_sessions: int = MAX_SESSIONS_PER_AGENT,
        max_agents: int = MAX_AGENTS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.window = window
        self.max_values = max_values
        self.max_session_values = max_session_values if max_session_values is not None else max_values
        self.max_sessions = max_sessions
        self.max_agents = max_agents
        self.clock = clock
        self._agents: OrderedDict[str, _AgentMemory] = OrderedDict()
        self._owed = Owed()

    def _bounded(self, size: int) -> _Bounded:
        return _Bounded(size, self.window, self.clock)

    def _of(self, agent: str) -> _AgentMemory:
        memory = self._agents.get(agent)
        if memory is None:
            memory = self._agents[agent] = _AgentMemory(
                self._bounded(self.max_values), self._bounded(self.max_values), OrderedDict()
            )
            while len(self._agents) > self.max_agents:  # the agent heard from least recently goes first
                self._agents.popitem(last=False)
        else:
            self._agents.move_to_end(agent)
        return memory

    def _session(self, memory: _AgentMemory, session: str) -> _Bounded:
        bounded = memory.sessions.get(session)
        if bounded is None:
            bounded = memory.sessions[session] = self._bounded(self.max_session_values)
            while len(memory.sessions) > self.max_sessions:
                memory.sessions.popitem(last=False)
        else:
            memory.sessions.move_to_end(session)
        return bounded

    async def note_arguments(self, whose: Whose, values: Iterable[str]) -> None:
        self._owed.settle()
        self._note(whose, values)

    def _note(self, whose: Whose, values: Iterable[str]) -> None:
        written = self._of(whose.agent).written
        for value in values:
            written.put(value, None)

    def note_soon(self, whose: Whose, scope: Scope, values: Callable[[], Iterable[str]]) -> bool:
        memory = self._agents.get(whose.agent)
        if memory is not None:
            for place in memories(whose, scope):
                tainted = memory.tainted if place is None else memory.sessions.get(place)
                if tainted is not None and tainted.items:
                    return False
        return self._owed.owe(lambda: self._note(whose, values()))

    async def taint(self, whose: Whose, values: Iterable[str], source: TaintSource) -> list[str]:
        self._owed.settle()
        memory = self._of(whose.agent)
        targets = [memory.tainted]
        if whose.session is not None:
            targets.append(self._session(memory, whose.session))
        kept: list[str] = []
        for value in dict.fromkeys(values):
            if memory.written.get(value) is not None:
                continue
            for tainted in targets:
                if tainted.get(value) is None:  # the first result a value appeared in is the one named
                    tainted.put(value, source)
            kept.append(value)
        return kept

    async def find(
        self, whose: Whose, values: Iterable[str], *, scope: Scope = "both", flagged_only: bool = False
    ) -> tuple[str, TaintSource] | None:
        self._owed.settle()
        memory = self._agents.get(whose.agent)
        if memory is None:
            return None
        places = [memory.tainted if place is None else memory.sessions.get(place) for place in memories(whose, scope)]
        checked = [place for place in places if place is not None]
        for value in values:
            for tainted in checked:
                found = tainted.get(value)
                if found is not None and found[1] is not None and (found[1].flagged or not flagged_only):
                    return value, found[1]
        return None

    async def find_and_note(
        self,
        whose: Whose,
        values: Iterable[str],
        written: Iterable[str],
        *,
        scope: Scope = "both",
        flagged_only: bool = False,
    ) -> tuple[str, TaintSource] | None:
        found = await self.find(whose, values, scope=scope, flagged_only=flagged_only)
        await self.note_arguments(whose, written)
        return found

    async def aclose(self) -> None:
        return None

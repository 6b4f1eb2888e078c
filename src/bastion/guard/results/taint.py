"""What the session remembers: values that untrusted results carried, per agent, for a window.

`TaintStore` is the interface a shared-state backend implements (Redis, so every replica
knows what any replica saw); `MemoryTaintStore` keeps it in this process, bounded per agent.
Values the agent itself wrote in its arguments before a result are not tainted by it.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

FLAGGED = "flagged as injection"
"""How `TaintSource.why` begins for values from a result a detector flagged."""


@dataclass(frozen=True, slots=True)
class TaintSource:
    """The result a remembered value first appeared in."""

    correlation_id: str
    server: str
    tool: str
    why: str
    """`flagged as injection (framing)`, or `from untrusted server`."""
    at: float


class TaintStore(Protocol):
    """Per-agent memory of tainted values and of the values the agent wrote itself."""

    async def note_arguments(self, agent: str, values: Iterable[str]) -> None:
        """The agent wrote these values in a call's arguments (now trusted against later results)."""
        ...

    async def taint(self, agent: str, values: Iterable[str], source: TaintSource) -> list[str]:
        """Remember `values` as coming from `source`, but those the agent wrote earlier; returns those kept."""
        ...

    async def find(self, agent: str, values: Iterable[str]) -> tuple[str, TaintSource] | None:
        """The first of `values` remembered as tainted, and where it came from."""
        ...


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


MAX_AGENTS = 10000
"""Agents remembered at most by `MemoryTaintStore` (many JWT subjects must not grow it without bound)."""


class MemoryTaintStore:
    """A `TaintStore` in this process's memory, bounded to `max_values` per agent and `max_agents` agents."""

    def __init__(
        self,
        *,
        window: float,
        max_values: int,
        max_agents: int = MAX_AGENTS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.window = window
        self.max_values = max_values
        self.max_agents = max_agents
        self.clock = clock
        self._tainted: OrderedDict[str, _Bounded] = OrderedDict()
        self._written: OrderedDict[str, _Bounded] = OrderedDict()

    def _of(self, table: OrderedDict[str, _Bounded], agent: str) -> _Bounded:
        bounded = table.get(agent)
        if bounded is None:
            bounded = table[agent] = _Bounded(self.max_values, self.window, self.clock)
            while len(table) > self.max_agents:  # the agent heard from least recently goes first
                table.popitem(last=False)
        else:
            table.move_to_end(agent)
        return bounded

    async def note_arguments(self, agent: str, values: Iterable[str]) -> None:
        written = self._of(self._written, agent)
        for value in values:
            written.put(value, None)

    async def taint(self, agent: str, values: Iterable[str], source: TaintSource) -> list[str]:
        written = self._of(self._written, agent)
        tainted = self._of(self._tainted, agent)
        kept: list[str] = []
        for value in dict.fromkeys(values):
            if written.get(value) is not None:
                continue
            if tainted.get(value) is None:  # the first result a value appeared in is the one named
                tainted.put(value, source)
            kept.append(value)
        return kept

    async def find(self, agent: str, values: Iterable[str]) -> tuple[str, TaintSource] | None:
        tainted = self._tainted.get(agent)
        if tainted is None:
            return None
        for value in values:
            found = tainted.get(value)
            if found is not None and found[1] is not None:
                return value, found[1]
        return None

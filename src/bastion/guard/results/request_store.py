"""What the session remembers of injected requests: what flagged results asked the agent to do,
and what the agent itself did and wrote, each with when it first happened, per agent.

`RequestStore` is what a shared-state backend implements; `MemoryRequestStore` keeps it in
this process, bounded per agent and in agents, each entry expiring after the window.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol

from bastion.guard.results.owed import Owed
from bastion.guard.results.taint import TaintSource

if TYPE_CHECKING:
    from bastion.guard.results.requests import Request

MAX_AGENTS = 10000
MAX_REQUESTS = 200
"""Injected requests remembered per agent at most (the oldest go first)."""


class RequestStore(Protocol):
    """Per-agent memory of injected requests and of the agent's own actions and values."""

    async def remember(self, agent: str, request: Request, source: TaintSource) -> None:
        """A flagged result (`source`) asked for `request`."""
        ...

    async def requests(self, agent: str) -> list[tuple[Request, TaintSource]]:
        """The requests remembered for `agent`, newest first."""
        ...

    async def note(self, agent: str, actions: Iterable[str], objects: Iterable[str]) -> None:
        """The agent did these actions (a side-effecting call) and wrote these objects in its arguments."""
        ...

    def note_soon(self, agent: str, objects: Callable[[], Iterable[str]]) -> bool:
        """Owe `note` of no action and of what `objects()` gives, as of now (`owed.Owed`: before this
        store is next read or written, on the event loop's next turn at the latest); False where the
        store cannot (the caller notes at once)."""
        ...

    async def first_seen(self, agent: str, items: Iterable[str]) -> dict[str, float]:
        """When the agent first did each of `items` (actions as `action:<family>`, or objects) it has done."""
        ...


class _FirstSeen:
    """item -> when first seen, at most `size` (the oldest go first), expiring after `window` seconds."""

    def __init__(self, size: int, window: float, clock: Callable[[], float]) -> None:
        self.size, self.window, self.clock = size, window, clock
        self.items: OrderedDict[str, float] = OrderedDict()

    def add(self, item: str, now: float | None = None) -> None:
        """`item` seen at `now` (this moment by default)."""
        if now is None:
            now = self.clock()
        at = self.items.get(item)
        if at is not None and now - at <= self.window:
            return
        self.items.pop(item, None)
        self.items[item] = now
        while len(self.items) > self.size:
            self.items.popitem(last=False)

    def get(self, item: str) -> float | None:
        at = self.items.get(item)
        if at is None or self.clock() - at > self.window:
            return None
        return at


class MemoryRequestStore:
    """A `RequestStore` in this process: `max_values` objects and `MAX_REQUESTS` requests per agent."""

    def __init__(
        self, *, window: float, max_values: int, max_agents: int = MAX_AGENTS, clock: Callable[[], float] = time.time
    ) -> None:
        self.window, self.max_values, self.max_agents, self.clock = window, max_values, max_agents, clock
        self._requests: OrderedDict[str, list[tuple[Request, TaintSource]]] = OrderedDict()
        self._seen: OrderedDict[str, _FirstSeen] = OrderedDict()
        self._owed = Owed()

    def _agent(self, table: OrderedDict[str, Any], agent: str) -> None:
        table.move_to_end(agent)
        while len(table) > self.max_agents:  # the agent heard from least recently goes first
            table.popitem(last=False)

    async def remember(self, agent: str, request: Request, source: TaintSource) -> None:
        self._owed.settle()
        kept = self._requests.setdefault(agent, [])
        kept.append((request, source))
        del kept[:-MAX_REQUESTS]
        self._agent(self._requests, agent)

    async def requests(self, agent: str) -> list[tuple[Request, TaintSource]]:
        self._owed.settle()
        kept = self._requests.get(agent)
        if not kept:
            return []
        now = self.clock()
        kept[:] = [(request, source) for request, source in kept if now - source.at <= self.window]
        return kept[::-1]

    async def note(self, agent: str, actions: Iterable[str], objects: Iterable[str]) -> None:
        self._owed.settle()
        self._note(agent, actions, objects, self.clock())

    def _note(self, agent: str, actions: Iterable[str], objects: Iterable[str], now: float) -> None:
        seen = self._seen.get(agent)
        if seen is None:
            seen = self._seen[agent] = _FirstSeen(self.max_values, self.window, self.clock)
        self._agent(self._seen, agent)
        for action in actions:
            seen.add(f"action:{action}", now)
        for item in objects:
            seen.add(item, now)

    def note_soon(self, agent: str, objects: Callable[[], Iterable[str]]) -> bool:
        now = self.clock()
        return self._owed.owe(lambda: self._note(agent, (), objects(), now))

    async def first_seen(self, agent: str, items: Iterable[str]) -> dict[str, float]:
        self._owed.settle()
        seen = self._seen.get(agent)
        if seen is None:
            return {}
        found = {item: seen.get(item) for item in items}
        return {item: at for item, at in found.items() if at is not None}

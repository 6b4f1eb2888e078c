"""The tools an upstream declares, as Bastion last saw them: the source of `ToolCall.definition`.

Checks judge a call by the tool's definition as the server declared it (its annotations,
its pinned hash), never by what the request claims. The cache is filled from every
`tools/list` result that passes through the proxy, and fetched by Bastion itself when a
call names a tool it has not seen, when the upstream said its list changed, when the
upstream session was reopened, or when the copy is older than `max_age`.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import anyio

Request = Callable[[str, Mapping[str, Any] | None], Awaitable[dict[str, Any]]]
"""Sends one request upstream and returns the raw result (`Upstream.request`)."""

DEFAULT_MAX_AGE = 60.0
"""Seconds after which a cached tool list is fetched again before it is trusted."""

MIN_REFETCH_INTERVAL = 1.0
"""An unknown tool name causes at most one fetch a second, so agents cannot flood the upstream."""

_MAX_PAGES = 100


class ToolDefinitions:
    """Per-upstream cache of tool definitions keyed by name."""

    def __init__(
        self,
        request: Request,
        generation: Callable[[], int],
        *,
        max_age: float = DEFAULT_MAX_AGE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._request = request
        self._generation = generation
        self._max_age = max_age
        self._clock = clock
        self._tools: dict[str, dict[str, Any]] = {}
        self._fetched_at: float | None = None
        self._fetched_generation = -1
        self._lock = anyio.Lock()

    def remember(self, tools: list[dict[str, Any]], *, complete: bool) -> None:
        """Take the tools of a `tools/list` result seen on its way to an agent.

        `complete` means the result was the whole list (first page, no next cursor): it
        replaces the cache. A page of a longer list only adds to it.
        """
        named = {tool["name"]: tool for tool in tools if isinstance(tool, dict) and isinstance(tool.get("name"), str)}
        if complete:
            self._tools = named
            self._fetched_at = self._clock()
            self._fetched_generation = self._generation()
        else:
            self._tools.update(named)

    def invalidate(self) -> None:
        """The upstream said its tool list changed: the next lookup fetches it again."""
        self._fetched_at = None

    async def definition(self, name: str) -> Mapping[str, Any] | None:
        """The declared definition of tool `name`, or `None` when the upstream does not list it.

        Raises what `request` raises (`RpcError`) when the list cannot be fetched.
        """
        if self._fresh() and name in self._tools:
            return self._tools[name]
        async with self._lock:
            if not (self._fresh() and name in self._tools) and self._may_fetch():
                await self._fetch()
        return self._tools.get(name)

    async def listing(self) -> Mapping[str, Mapping[str, Any]]:
        """Every declared tool by name, fetched first when the copy is stale. Raises as `definition`."""
        if not self._fresh():
            async with self._lock:
                if not self._fresh():
                    await self._fetch()
        return self._tools

    def _fresh(self) -> bool:
        return (
            self._fetched_at is not None
            and self._fetched_generation == self._generation()
            and self._clock() - self._fetched_at < self._max_age
        )

    def _may_fetch(self) -> bool:
        # A stale or invalidated list is always fetched; a fresh one that lacks the name
        # (an agent guessing tool names) at most once a second.
        if not self._fresh():
            return True
        assert self._fetched_at is not None
        return self._clock() - self._fetched_at >= MIN_REFETCH_INTERVAL

    async def _fetch(self) -> None:
        generation = self._generation()
        tools: dict[str, dict[str, Any]] = {}
        cursor: str | None = None
        for _ in range(_MAX_PAGES):
            result = await self._request("tools/list", {"cursor": cursor} if cursor else None)
            for tool in result.get("tools") or []:
                if isinstance(tool, dict) and isinstance(tool.get("name"), str):
                    tools[tool["name"]] = tool
            cursor = result.get("nextCursor")
            if not isinstance(cursor, str) or not cursor:
                break
        self._tools = tools
        self._fetched_at = self._clock()
        self._fetched_generation = generation

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from mcp.shared.exceptions import MCPError

from bastion.proxy.tool_definitions import ToolDefinitions


class FakeUpstream:
    """Answers tools/list from a list of pages; counts requests. Stands in for `Upstream.request`."""

    def __init__(self, pages: list[list[dict[str, Any]]]) -> None:
        self.pages = pages
        self.requests: list[Mapping[str, Any] | None] = []
        self.starts = 1
        self.fail = False

    async def request(self, method: str, params: Mapping[str, Any] | None) -> dict[str, Any]:
        assert method == "tools/list"
        self.requests.append(params)
        if self.fail:
            raise MCPError(code=-32000, message="down")
        index = int(params["cursor"]) if params else 0
        result: dict[str, Any] = {"tools": self.pages[index]}
        if index + 1 < len(self.pages):
            result["nextCursor"] = str(index + 1)
        return result


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def tool(name: str, description: str = "") -> dict[str, Any]:
    return {"name": name, "description": description, "inputSchema": {"type": "object"}}


def make(pages: list[list[dict[str, Any]]]) -> tuple[ToolDefinitions, FakeUpstream, Clock]:
    upstream, clock = FakeUpstream(pages), Clock()
    return ToolDefinitions(upstream.request, lambda: upstream.starts, clock=clock), upstream, clock


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_fetches_every_page_once_then_serves_from_cache():
    tools, upstream, _ = make([[tool("a")], [tool("b")]])
    assert (await tools.definition("b")) == tool("b")
    assert (await tools.definition("a")) == tool("a")
    assert upstream.requests == [None, {"cursor": "1"}]


@pytest.mark.anyio
async def test_unknown_tool_is_none_and_refetch_is_rate_limited():
    tools, upstream, clock = make([[tool("a")]])
    assert await tools.definition("nope") is None
    assert await tools.definition("nope") is None
    assert len(upstream.requests) == 1
    clock.now += 1.5
    upstream.pages = [[tool("a"), tool("nope")]]
    assert await tools.definition("nope") == tool("nope")
    assert len(upstream.requests) == 2


@pytest.mark.anyio
async def test_complete_list_seen_in_passing_replaces_the_cache():
    tools, upstream, _ = make([[tool("a", "old")]])
    tools.remember([tool("a", "new")], complete=True)
    assert await tools.definition("a") == tool("a", "new")
    assert upstream.requests == []


@pytest.mark.anyio
async def test_a_page_only_adds_and_does_not_make_the_cache_fresh():
    tools, upstream, _ = make([[tool("a", "upstream")]])
    tools.remember([tool("a", "page")], complete=False)
    assert await tools.definition("a") == tool("a", "upstream")
    assert len(upstream.requests) == 1


@pytest.mark.anyio
@pytest.mark.parametrize("event", ["invalidate", "restart", "age"])
async def test_change_notice_restart_and_age_refetch(event: str):
    tools, upstream, clock = make([[tool("a", "v1")]])
    assert await tools.definition("a") == tool("a", "v1")
    upstream.pages = [[tool("a", "v2")]]
    if event == "invalidate":
        tools.invalidate()
    elif event == "restart":
        upstream.starts += 1
    else:
        clock.now += 61
    assert await tools.definition("a") == tool("a", "v2")


@pytest.mark.anyio
async def test_fetch_failure_raises_instead_of_guessing():
    tools, upstream, _ = make([[tool("a")]])
    upstream.fail = True
    with pytest.raises(MCPError):
        await tools.definition("a")

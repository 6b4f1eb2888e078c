from __future__ import annotations

import anyio
import pytest

from tests.e2e.clients import connect


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
@pytest.mark.parametrize("front", ["http", "sse", "wrap"])
async def test_time_tool_through_every_front_door(gateway, front, mode):
    if front == "sse" and mode != "legacy":
        pytest.skip("legacy SSE carries the handshake era only")
    with anyio.fail_after(60):
        async with connect(gateway, "time", front=front, mode=mode) as client:
            tools = await client.list_tools()
            assert {t.name for t in tools.tools} >= {"get_current_time", "convert_time"}
            result = await client.call_tool("get_current_time", {"timezone": "UTC"})
            assert not result.is_error
            assert '"timezone": "UTC"' in result.content[0].text

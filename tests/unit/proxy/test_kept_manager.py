"""The Streamable HTTP session manager is replaced when its task group fails, and never answers 500."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx2
import pytest
from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

from bastion.proxy.kept_manager import KeptSessionManager

pytestmark = pytest.mark.anyio

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}
HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def tripping_lifespan(trip: anyio.Event) -> Any:
    """A lifespan (entered by the manager's `run()`) with a task that fails once `trip` is set.

    Its failure cancels the task that entered `run()` and ends `run()`, as anything escaping a
    task under the manager's task group does.
    """

    @asynccontextmanager
    async def lifespan(server: Server[Any]) -> AsyncIterator[dict[str, Any]]:
        async def fail_when_tripped() -> None:
            await trip.wait()
            raise OSError("a task under the session manager failed")

        async with anyio.create_task_group() as tg:
            tg.start_soon(fail_when_tripped)
            yield {}
            tg.cancel_scope.cancel()

    return lifespan


def factory(servers: list[Server[Any]]) -> Any:
    """Managers serving `servers`, in turn."""

    def make() -> StreamableHTTPSessionManager:
        return StreamableHTTPSessionManager(app=servers.pop(0), json_response=True)

    return make


@asynccontextmanager
async def http_to(kept: KeptSessionManager) -> AsyncIterator[httpx2.AsyncClient]:
    transport = httpx2.ASGITransport(app=kept.handle_request)
    async with httpx2.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
        yield http


async def test_a_manager_that_fails_is_replaced_and_requests_are_answered_again() -> None:
    trip = anyio.Event()
    kept = KeptSessionManager("kept", factory([Server("kept", lifespan=tripping_lifespan(trip)), Server("kept")]))
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            await tg.start(kept.run)
            async with http_to(kept) as http:
                before = await http.post("/mcp", json=INITIALIZE, headers=HEADERS)
                assert before.status_code == 200, before.text
                replaced = kept.next_start
                trip.set()
                await replaced.wait()
                assert kept.replacements == 1
                assert kept.running
                after = await http.post("/mcp", json=INITIALIZE, headers=HEADERS)
            assert after.status_code == 200, after.text
            assert after.json()["result"]["serverInfo"]["name"] == "kept"
            tg.cancel_scope.cancel()


async def test_without_a_running_manager_requests_get_503_with_a_json_rpc_error() -> None:
    kept = KeptSessionManager("kept", factory([Server("kept")]))
    async with http_to(kept) as http:
        refused = await http.post("/mcp", json=INITIALIZE, headers=HEADERS)
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "1"
    assert "'kept' is restarting" in refused.json()["error"]["message"]


async def test_a_manager_that_cannot_start_raises_instead_of_being_replaced() -> None:
    @asynccontextmanager
    async def failing_lifespan(server: Server[Any]) -> AsyncIterator[dict[str, Any]]:
        raise OSError("cannot start")
        yield {}

    kept = KeptSessionManager(
        "kept", lambda: StreamableHTTPSessionManager(app=Server("kept", lifespan=failing_lifespan))
    )
    with anyio.fail_after(10), pytest.raises(OSError, match="cannot start"):
        await kept.run()
    assert kept.replacements == 0
    assert not kept.running


async def test_a_manager_given_its_task_group_starts_with_the_first_request_and_is_not_restarting_before() -> None:
    made: list[int] = []

    def make() -> StreamableHTTPSessionManager:
        made.append(1)
        return StreamableHTTPSessionManager(app=Server("kept"), json_response=True)

    kept = KeptSessionManager("kept", make)
    assert kept.restarting  # no task group yet: nothing will serve
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            kept.serve_in(tg)
            assert made == []
            assert not kept.running
            assert not kept.restarting  # waiting for its first request: ready
            async with http_to(kept) as http:
                first, second = [], []
                async with anyio.create_task_group() as both:
                    both.start_soon(lambda: _post(http, first))
                    both.start_soon(lambda: _post(http, second))
            assert first[0].status_code == second[0].status_code == 200
            assert made == [1]  # one manager, started once for both requests
            assert kept.running
            assert not kept.restarting
            tg.cancel_scope.cancel()


async def _post(http: httpx2.AsyncClient, into: list[httpx2.Response]) -> None:
    into.append(await http.post("/mcp", json=INITIALIZE, headers=HEADERS))

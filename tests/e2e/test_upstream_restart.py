"""An HTTP upstream that restarts between two calls is reached again, on a fresh session.

A real `bastion up` in front of a real HTTP upstream (tests/e2e/servers/http_upstream.py), a real
SDK client as the agent. The upstream is killed and started again on the same port, quickly enough
that Bastion sees no connection error; the agent's next calls go through.

For a handshake-era upstream (Streamable HTTP, `Mcp-Session-Id`), the new process answers the old
session id with HTTP 404, and the spec says the client must then start a new session. Before the
fix Bastion kept the dead session, so every call after the restart failed ("Session not found")
until Bastion itself was restarted. A legacy HTTP+SSE upstream loses its event stream when the
process dies and a 2026-07-28 upstream holds no session, so both recover anyway; they are here
as the comparison.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import pytest
from mcp.shared.exceptions import MCPError

from tests.e2e.clients import connect
from tests.e2e.conftest import RunningGateway, start_gateway, write_config
from tests.e2e.http_upstreams import HttpUpstream, http_upstream

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]


@contextmanager
def bastion_in_front(tmp_path: Path, upstream: HttpUpstream) -> Iterator[RunningGateway]:
    """A `bastion up` whose one server, `flaky`, is `upstream`; stopped on the way out."""
    gateway = start_gateway(write_config(tmp_path, {"flaky": upstream.config}))
    try:
        yield gateway
    finally:
        gateway.stop()


@pytest.mark.parametrize("era", ["handshake", "sse", "modern"])
async def test_calls_after_an_upstream_restart_reach_the_new_process(tmp_path: Path, era: str) -> None:
    with http_upstream(era=era) as first, bastion_in_front(tmp_path, first) as gateway:
        with anyio.fail_after(120):
            async with connect(gateway, "flaky") as client:
                assert (await client.call_tool("count", {})).content[0].text == "1"

                first.kill()
                with http_upstream(first.port, era):
                    # The first call after the restart ran exactly once, on the new process.
                    # (Handshake era: on the old session it met a 404, the new process never
                    # ran it, and Bastion sent it again on a fresh session.)
                    counted = await client.call_tool("count", {})
                    assert not counted.is_error, counted
                    assert counted.content[0].text == "1"
                    # ... and the calls after it use that fresh session.
                    again = await client.call_tool("echo", {"text": "again"})
                    assert again.content[0].text == "again"
                    assert (await client.call_tool("count", {})).content[0].text == "2"
        assert gateway.process.poll() is None, "the gateway process exited"


async def test_concurrent_calls_after_a_restart_each_run_exactly_once(tmp_path: Path) -> None:
    """Several calls meet the forgotten session at once: each runs exactly once, on the new session."""
    with http_upstream(era="handshake") as first, bastion_in_front(tmp_path, first) as gateway:
        with anyio.fail_after(120):
            async with connect(gateway, "flaky") as client:
                assert (await client.call_tool("count", {})).content[0].text == "1"
                first.kill()
                with http_upstream(first.port, "handshake"):
                    seen: list[str] = []

                    async def count() -> None:
                        result = await client.call_tool("count", {})
                        assert not result.is_error, result
                        seen.append(result.content[0].text)

                    async with anyio.create_task_group() as tg:
                        for _ in range(5):
                            tg.start_soon(count)
                    assert sorted(seen) == ["1", "2", "3", "4", "5"]
                    assert (await client.call_tool("count", {})).content[0].text == "6"


async def test_a_call_in_flight_when_the_upstream_ends_its_session_is_not_sent_again(tmp_path: Path) -> None:
    """A call the server may have run is never retried; the call after it gets a fresh session."""
    with http_upstream(era="handshake") as upstream, bastion_in_front(tmp_path, upstream) as gateway:
        with anyio.fail_after(120):
            async with connect(gateway, "flaky") as client:
                with pytest.raises(MCPError) as failed:
                    await client.call_tool("end_session", {})
                # Not retried: Bastion says the server stopped while handling it.
                assert "stopped while handling this request" in failed.value.error.message, failed.value.error
                # `end_session` ran once (1); this is the second run of anything, on a new session.
                assert (await client.call_tool("count", {})).content[0].text == "2"


async def test_a_call_refused_on_the_fresh_session_too_is_not_sent_a_third_time(tmp_path: Path) -> None:
    """The server forgets the session again at once: the agent gets a clear error, the call never ran."""
    with http_upstream(era="handshake") as upstream, bastion_in_front(tmp_path, upstream) as gateway:
        with anyio.fail_after(120):
            async with connect(gateway, "flaky") as client:
                with pytest.raises(MCPError) as failed:
                    await client.call_tool("forgotten", {})
                message = failed.value.error.message
                assert "forgot its session twice in a row" in message, failed.value.error
                assert "not processed" in message
                # It never ran (the server counts every run of either tool), and the next call
                # goes through on yet another session.
                assert (await client.call_tool("count", {})).content[0].text == "1"
        assert gateway.process.poll() is None, "the gateway process exited"

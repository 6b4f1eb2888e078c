"""The stdio front door's own bookkeeping: requests in flight as plain tasks, lines out whole, the era
decided by the first request (what came before it replayed), each era's refusals made at the door."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from typing import Any

import anyio
import orjson
import pytest

from bastion.model import Principal
from bastion.relay.flow import Flow
from bastion.relay.stdio_front import StdioFront
from bastion.stdio_pipes import PipeTextWriter

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Lines:
    """stdin: the given lines, then (unless `hold`) the end of input."""

    def __init__(self, *lines: bytes, hold: anyio.Event | None = None) -> None:
        self._lines = [line.decode() + "\n" for line in lines]
        self._hold = hold

    async def __aiter__(self) -> AsyncIterator[str]:
        for line in self._lines:
            yield line
        if self._hold is not None:
            await self._hold.wait()


class Written:
    """stdout: what was written, line by line."""

    def __init__(self) -> None:
        self.lines: list[dict[str, Any]] = []
        self.arrived = anyio.Event()

    async def write_line(self, line: bytes) -> None:
        self.lines.append(orjson.loads(line))
        self.arrived.set()


class FakeRelay:
    """Answers `tools/call` with its id, but raises for the method `explode` (as no relay should)."""

    name = "echo"

    def __init__(self) -> None:
        self.started: list[Any] = []
        self.flows: list[Flow] = []
        self.notifications: list[str] = []
        self.cancelled = anyio.Event()
        self.block = anyio.Event()

    async def answer(self, flow: Flow) -> tuple[bytes, int | None]:
        self.started.append(flow.request_id)
        self.flows.append(flow)
        if flow.method == "explode":
            raise RuntimeError("boom")
        if flow.method == "block":
            try:
                await self.block.wait()
            except BaseException:
                self.cancelled.set()
                raise
        return orjson.dumps({"jsonrpc": "2.0", "id": flow.request_id, "result": {}}), None

    async def notified(self, session: Any, notification: Any) -> None:
        self.notifications.append(notification.method)


def request(request_id: int, method: str) -> bytes:
    return orjson.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": {}})


def front(relay: FakeRelay) -> StdioFront:
    return StdioFront(relay, Principal(agent="local:test", via="local"))  # type: ignore[arg-type]


async def test_a_request_that_fails_unexpectedly_is_logged_and_the_session_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    relay, out, end = FakeRelay(), Written(), anyio.Event()
    stdin = Lines(request(1, "explode"), request(2, "tools/call"), hold=end)

    with caplog.at_level(logging.ERROR, logger="bastion.relay.request_tasks"), anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(front(relay).serve, stdin, out)
            await out.arrived.wait()
            end.set()

    assert relay.started == [1, 2]
    assert out.lines == [{"jsonrpc": "2.0", "id": 2, "result": {}}]
    assert "answering a request failed" in caplog.text


async def test_requests_in_flight_are_cancelled_and_awaited_when_stdin_ends() -> None:
    relay, out, end = FakeRelay(), Written(), anyio.Event()
    stdin = Lines(request(1, "block"), request(2, "tools/call"), hold=end)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(front(relay).serve, stdin, out)
            await out.arrived.wait()  # request 2 answered while 1 still runs: they overlap
            assert relay.started == [1, 2]
            end.set()
        assert relay.cancelled.is_set()  # serve returned only after request 1 was cancelled

    assert out.lines == [{"jsonrpc": "2.0", "id": 2, "result": {}}]


@pytest.mark.parametrize(
    "anyio_backend", [("asyncio", {}), ("asyncio", {"use_uvloop": True})], ids=["asyncio", "uvloop"]
)
async def test_write_line_refuses_a_closed_pipe_with_an_os_error() -> None:
    """An OSError, which the front door reads as the agent gone (uvloop itself raises RuntimeError)."""
    loop = asyncio.get_running_loop()
    read_fd, write_fd = os.pipe()
    write_transport, protocol = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin, os.fdopen(write_fd, "wb", buffering=0)
    )
    writer = PipeTextWriter(asyncio.StreamWriter(write_transport, protocol, None, loop))
    try:
        await writer.write_line(b'{"a": 1}')
        assert os.read(read_fd, 100) == b'{"a": 1}\n'
        write_transport.close()

        with pytest.raises(BrokenPipeError):
            await writer.write_line(b'{"b": 2}')
    finally:
        os.close(read_fd)


META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientCapabilities": {},
}


def message(request_id: int | None, method: str, params: dict[str, Any] | None = None) -> bytes:
    body: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "params": params or {}}
    if request_id is not None:
        body["id"] = request_id
    return orjson.dumps(body)


async def served(relay: FakeRelay, answers: int, *lines: bytes) -> list[dict[str, Any]]:
    """What the front door writes for `lines` (in the order written), once it has written `answers` lines."""
    out, end = Written(), anyio.Event()
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(front(relay).serve, Lines(*lines, hold=end), out)
            while len(out.lines) < answers:
                out.arrived = anyio.Event()
                await out.arrived.wait()
            end.set()
    return out.lines


async def test_a_first_request_with_the_envelope_opens_the_2026_era() -> None:
    relay = FakeRelay()
    lines = await served(
        relay,
        4,
        b"{not json",
        message(None, "notifications/initialized"),
        message(1, "tools/list", {"_meta": META}),
        message(2, "initialize", {"protocolVersion": "2025-11-25"}),
        message(3, "tools/list"),
        message(None, "notifications/roots/list_changed"),
        message(4, "no/such", {"_meta": META}),
    )
    assert [flow.request_id for flow in relay.flows] == [1, 4]
    assert {flow.protocol_version for flow in relay.flows} == {"2026-07-28"}
    assert all(flow.session.session is None and not flow.session.can_send_request for flow in relay.flows)
    errors = {line["id"]: line["error"] for line in lines if "error" in line}
    assert errors[2]["code"] == -32022
    assert errors[2]["data"] == {"supported": ["2026-07-28"], "requested": "2025-11-25"}
    assert errors[3]["code"] == -32602
    assert relay.notifications == []  # the era's only notification from the agent is cancellation


async def test_a_first_request_without_the_envelope_opens_the_handshake_era() -> None:
    relay = FakeRelay()
    lines = await served(
        relay,
        3,
        message(1, "initialize", {"_meta": META, "protocolVersion": "2025-11-25"}),
        message(2, "tools/list", {"_meta": META}),
        message(None, "notifications/initialized"),
        message(3, "tools/list"),
    )
    assert [flow.request_id for flow in relay.flows] == [1, 3]
    assert all(flow.session.session is not None for flow in relay.flows)
    assert [line["error"]["code"] for line in lines if "error" in line] == [-32600]
    assert relay.notifications == ["notifications/initialized"]


async def test_eight_lines_before_the_first_request_are_replayed_and_later_ones_dropped() -> None:
    relay = FakeRelay()
    cancels = [message(None, "notifications/cancelled", {"requestId": n}) for n in range(9)]
    await served(relay, 1, *cancels, message(1, "ping"))
    assert relay.notifications == ["notifications/cancelled"] * 8
    assert relay.started == [1]

"""A request's response written by the task serving it: JSON when the answer comes first and
soon, else SSE (a message before the answer, or a slow answer kept alive)."""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from typing import Any

import anyio
import pytest

from bastion.relay.response_stream import PING, ResponseStream, sse_event

pytestmark = pytest.mark.anyio

HEADERS = [(b"mcp-session-id", b"abc")]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # the stream's keep-alive timer is the asyncio loop's


class Agent:
    """The ASGI `send` side: what the agent receives; `gone` makes every write fail as a closed socket does."""

    def __init__(self) -> None:
        self.messages: list[MutableMapping[str, Any]] = []
        self.gone = False
        self.wrote = anyio.Event()

    async def send(self, message: MutableMapping[str, Any]) -> None:
        if self.gone:
            raise OSError("connection reset")
        self.messages.append(message)
        self.wrote.set()

    @property
    def bodies(self) -> list[bytes]:
        return [m["body"] for m in self.messages if m["type"] == "http.response.body"]

    def start(self) -> MutableMapping[str, Any]:
        starts = [m for m in self.messages if m["type"] == "http.response.start"]
        assert len(starts) == 1, "exactly one response is started"
        return starts[0]


async def test_an_answer_that_comes_first_is_plain_json() -> None:
    agent = Agent()
    stream = ResponseStream(agent.send, HEADERS, keepalive_s=30)
    with stream.kept_alive():
        pass
    await stream.finish(b'{"result":1}', status=202)
    start = agent.start()
    assert start["status"] == 202
    assert (b"content-type", b"application/json") in start["headers"]
    assert (b"content-length", b"12") in start["headers"]
    assert (b"mcp-session-id", b"abc") in start["headers"]
    assert agent.bodies == [b'{"result":1}']
    assert agent.messages[-1].get("more_body", False) is False


async def test_a_message_before_the_answer_makes_it_a_stream() -> None:
    agent = Agent()
    stream = ResponseStream(agent.send, HEADERS, keepalive_s=30)
    with stream.kept_alive():
        await stream.send((b'{"method":"notifications/progress"}', False))
    await stream.finish(b'{"result":1}')
    start = agent.start()
    assert start["status"] == 200
    assert (b"content-type", b"text/event-stream") in start["headers"]
    assert (b"mcp-session-id", b"abc") in start["headers"]
    assert agent.bodies == [sse_event(b'{"method":"notifications/progress"}'), sse_event(b'{"result":1}'), b""]
    assert agent.messages[-1]["more_body"] is False


async def test_nothing_goes_out_after_the_answer() -> None:
    agent = Agent()
    stream = ResponseStream(agent.send, HEADERS, keepalive_s=30)
    await stream.finish(b"{}")
    with pytest.raises(anyio.ClosedResourceError):
        await stream.send((b"late", False))
    assert agent.bodies == [b"{}"]


async def test_a_slow_answer_is_kept_alive_as_a_stream() -> None:
    agent = Agent()
    stream = ResponseStream(agent.send, HEADERS, keepalive_s=0.01)
    with anyio.fail_after(10), stream.kept_alive():
        while agent.bodies.count(PING) < 2:  # the timer starts the stream, then pings repeat
            agent.wrote = anyio.Event()
            await agent.wrote.wait()
    await stream.finish(b'{"result":1}')
    start = agent.start()
    assert (b"content-type", b"text/event-stream") in start["headers"]
    assert set(agent.bodies[:-2]) == {PING}
    assert agent.bodies[-2:] == [sse_event(b'{"result":1}'), b""]
    pings = len(agent.bodies)
    await anyio.sleep(0.05)  # long enough for several more pings, were the keep-alive still running
    assert len(agent.bodies) == pings


async def test_an_agent_gone_closes_the_stream_and_the_answer_is_dropped_quietly() -> None:
    agent = Agent()
    stream = ResponseStream(agent.send, HEADERS, keepalive_s=30)
    with stream.kept_alive():
        await stream.send((b"first", False))
        agent.gone = True
        with pytest.raises(anyio.ClosedResourceError):  # a server-to-client request then uses the GET stream
            await stream.send((b"second", False))
    await stream.finish(b'{"result":1}')  # does not raise
    assert agent.bodies == [sse_event(b"first")]


async def test_the_answer_is_written_before_anything_queued_behind_it_runs() -> None:
    """Taking the free lock does not go through the event loop: a call's completion record,
    scheduled with `call_soon` as the answer is produced (`recording.record_soon`), runs only
    once the answer is written."""
    agent = Agent()
    stream = ResponseStream(agent.send, HEADERS, keepalive_s=30)
    ran_before_answer: list[bool] = []
    queued_ran = [False]

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.body":
            ran_before_answer.append(queued_ran[0])
        await agent.send(message)

    stream._send = send
    with stream.kept_alive():
        pass
    asyncio.get_running_loop().call_soon(queued_ran.__setitem__, 0, True)
    await stream.finish(b'{"result":1}')

    assert ran_before_answer == [False]
    await asyncio.sleep(0)
    assert queued_ran == [True]

"""The client transport over an already running server process (`bastion wrap`'s prestarted server)."""

from __future__ import annotations

import subprocess
import sys

import anyio
import mcp_types as types
import pytest
from mcp.shared.message import SessionMessage

from bastion.upstream.popen_stdio import popen_client

pytestmark = pytest.mark.anyio

ECHO = """
import json, sys
for line in sys.stdin:
    request = json.loads(line)
    print(json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": {"echo": request["params"]}}), flush=True)
"""

STUBBORN = """
import signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print('{"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": "info", "data": "up"}}', flush=True)
time.sleep(600)
"""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def spawn(code: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE)


async def test_messages_go_both_ways_and_the_process_ends_with_the_transport() -> None:
    process = spawn(ECHO)
    request = types.JSONRPCRequest(jsonrpc="2.0", id=7, method="ping", params={"x": 1})
    with anyio.fail_after(30):
        async with popen_client(process) as (read_stream, write_stream):
            await write_stream.send(SessionMessage(request))
            answer = await read_stream.receive()
    assert isinstance(answer, SessionMessage)
    assert answer.message.model_dump(by_alias=True, exclude_none=True) == {
        "jsonrpc": "2.0",
        "id": 7,
        "result": {"echo": {"x": 1}},
    }
    assert process.poll() == 0  # its stdin closed: it exited by itself


async def test_a_process_that_ignores_stdin_and_sigterm_is_killed() -> None:
    process = spawn(STUBBORN)
    with anyio.fail_after(30):
        async with popen_client(process) as (read_stream, _):
            await read_stream.receive()  # it is running, with SIGTERM ignored
    assert process.poll() == -9


async def test_a_process_that_exits_closes_the_read_stream() -> None:
    process = spawn("print('not json', flush=True)")
    with anyio.fail_after(30):
        async with popen_client(process) as (read_stream, _):
            unparsable = await read_stream.receive()
            assert isinstance(unparsable, Exception)
            with pytest.raises(anyio.EndOfStream):
                await read_stream.receive()

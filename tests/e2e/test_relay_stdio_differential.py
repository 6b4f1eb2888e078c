"""`bastion wrap` through the relay against the reference: the same scripted sessions over stdio.

A real SDK client runs the scripts of `test_relay_differential` against the probe server
directly, then through `bastion wrap` (a real subprocess) serving it with the SDK's server
stack (`BASTION_RELAY=0`, the reference) and with Bastion's relay (`BASTION_RELAY=1`).
What the agent sees must be the same; so must the answers to odd and malformed lines.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.abc import Process
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from bastion.relay import RELAY_ENV
from tests.e2e.conftest import BASTION
from tests.e2e.test_relay_differential import Agent, Steps, direct, probe, script

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.e2e,
    pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning"),
]


def wrap_env(tmp_path: Path, relay: str) -> dict[str, str]:
    home = tmp_path / f"home-{relay}"
    home.mkdir(exist_ok=True)
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "BASTION_DATA_DIR": str(home / "data"),
        RELAY_ENV: relay,
    }


def wrap_command(mode: str) -> list[str]:
    return [BASTION, "wrap", "--no-sandbox", "--name", "probe", "--", *probe(mode)]


@asynccontextmanager
async def wrapped(tmp_path: Path, relay: str, mode: str, agent: Agent) -> AsyncIterator[Client]:
    command = wrap_command(mode)
    params = StdioServerParameters(command=command[0], args=command[1:], env=wrap_env(tmp_path, relay))
    async with Client(params, mode=mode, **agent.options()) as client:  # type: ignore[arg-type]
        yield client


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_wrap_through_the_relay_shows_the_agent_what_the_sdk_path_and_the_server_show(tmp_path, mode):
    seen: dict[str, tuple[Steps, Agent]] = {}
    with anyio.fail_after(120):
        agent = Agent()
        async with direct(mode, agent) as client:
            seen["direct"] = (await script(client, agent, mode), agent)
        for name, relay in (("sdk", "0"), ("relay", "1")):
            agent = Agent()
            async with wrapped(tmp_path, relay, mode, agent) as client:
                seen[name] = (await script(client, agent, mode), agent)
    differences = []
    for left, right in (("direct", "sdk"), ("direct", "relay"), ("sdk", "relay")):
        for (step, one), (_, other) in zip(seen[left][0], seen[right][0], strict=True):
            if one != other:
                differences.append((left, right, step, one, other))
        for what in ("sampled", "logs"):
            if getattr(seen[left][1], what) != getattr(seen[right][1], what):
                differences.append((left, right, what, getattr(seen[left][1], what), getattr(seen[right][1], what)))
    assert differences == [], "\n".join(map(repr, differences))


INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}},
}

# (label, message, answered): what an agent may write on wrap's stdin, well-formed or not, and
# whether a request id `ID` in it (replaced by a fresh one) is answered.
RAW_LINES: list[tuple[str, Any, bool]] = [
    ("not json", "{not json", False),
    ("not an object", "hello", False),
    ("an array", [{"jsonrpc": "2.0", "id": "ID", "method": "ping"}], False),
    ("wrong version field", {"jsonrpc": "1.0", "id": "ID", "method": "ping"}, False),
    ("params not an object", {"jsonrpc": "2.0", "id": "ID", "method": "tools/list", "params": [1]}, False),
    ("id is a float", {"jsonrpc": "2.0", "id": 2.5, "method": "ping"}, False),
    ("id is null", {"jsonrpc": "2.0", "id": None, "method": "ping"}, False),
    ("unknown method", {"jsonrpc": "2.0", "id": "ID", "method": "no/such"}, True),
    ("tools/call without a name", {"jsonrpc": "2.0", "id": "ID", "method": "tools/call", "params": {}}, True),
    ("tools/list", {"jsonrpc": "2.0", "id": "ID", "method": "tools/list"}, True),
    ("unknown notification", {"jsonrpc": "2.0", "method": "notifications/whatever"}, False),
    ("cancel of nothing", {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {}}, False),
    ("stray response", {"jsonrpc": "2.0", "id": 99, "result": {}}, False),
    ("stray error", {"jsonrpc": "2.0", "id": 98, "error": {"code": 1, "message": "x"}}, False),
    ("a lone surrogate escaped", '{"jsonrpc": "2.0", "id": "ID", "method": "ping", "params": {"x": "\udcff"}}', True),
    ("empty line", "", False),
]


def comparable(message: dict[str, Any]) -> Any:
    """An answer without what legitimately differs (error messages, result field order)."""
    if isinstance(message.get("error"), dict):
        return {**message, "error": {"code": message["error"].get("code")}}
    if isinstance(message.get("result"), dict):
        return {**message, "result": sorted(message["result"])}
    return message


class Lines:
    """`bastion wrap` as a raw agent sees it: lines in, lines out."""

    def __init__(self, process: Process) -> None:
        assert process.stdin is not None
        assert process.stdout is not None
        self.process = process
        self.buffer = b""

    async def send(self, line: str) -> None:
        assert self.process.stdin is not None
        await self.process.stdin.send(line.encode("utf-8", errors="surrogateescape") + b"\n")

    async def receive(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        while b"\n" not in self.buffer:
            self.buffer += await self.process.stdout.receive()
        line, self.buffer = self.buffer.split(b"\n", 1)
        message: dict[str, Any] = json.loads(line)
        return message

    async def until(self, fence: int, answered: int | None) -> list[Any]:
        """Everything written until the answer of the ping with id `fence` (left out) and of request `answered`."""
        await self.send(json.dumps({"jsonrpc": "2.0", "id": fence, "method": "ping"}))
        got = []
        fenced = False
        while not fenced or (answered is not None and not any(m.get("id") == answered for m in got)):
            message = await self.receive()
            if message.get("id") == fence:
                fenced = True
            else:
                got.append(comparable(message))
        return got


async def raw_session(tmp_path: Path, relay: str) -> list[Any]:
    answers: list[Any] = []
    async with await anyio.open_process(wrap_command("legacy"), env=wrap_env(tmp_path, relay)) as process:
        lines = Lines(process)
        await lines.send(json.dumps(INIT))
        answers.append(("initialize", sorted((await lines.receive())["result"])))
        await lines.send(json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        for number, (label, message, answered) in enumerate(RAW_LINES, start=10):
            line = message if isinstance(message, str) else json.dumps(message)
            await lines.send(line.replace('"ID"', str(number)))
            answers.append((label, await lines.until(1000 + number, number if answered else None)))
        assert process.stdin is not None
        await process.stdin.aclose()  # end of input: wrap ends cleanly
        answers.append(("exit", await process.wait()))
    return answers


async def test_odd_and_malformed_lines_get_the_answers_the_sdk_path_gives(tmp_path):
    answers: dict[str, list[Any]] = {}
    with anyio.fail_after(120):
        for relay in ("0", "1"):
            answers[relay] = await raw_session(tmp_path, relay)
    differences = [(sdk, relay) for sdk, relay in zip(answers["0"], answers["1"], strict=True) if sdk != relay]
    assert differences == [], "\n".join(map(repr, differences))
    assert ("unknown method", [{"jsonrpc": "2.0", "id": 17, "error": {"code": -32601}}]) in answers["1"]
    assert answers["1"][-1] == ("exit", 0)


async def reused_id_session(tmp_path: Path, relay: str) -> list[Any]:
    answers: list[Any] = []
    async with await anyio.open_process(wrap_command("legacy"), env=wrap_env(tmp_path, relay)) as process:
        lines = Lines(process)
        await lines.send(json.dumps(INIT))
        await lines.receive()
        await lines.send(json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        call = {"jsonrpc": "2.0", "method": "tools/call", "params": {"name": "wait_forever", "arguments": {}}}
        await lines.send(json.dumps({**call, "id": 7}))
        await lines.send(json.dumps({**call, "id": "7"}))
        refused = await lines.receive()
        answers.append((refused["id"], refused["error"]["code"], "already in flight" in refused["error"]["message"]))
        cancel = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 7}}
        await lines.send(json.dumps(cancel))
        answers.append(("after cancel", await lines.until(1000, None)))  # the cancelled call is never answered
        assert process.stdin is not None
        await process.stdin.aclose()
        answers.append(("exit", await process.wait()))
    return answers


async def test_a_reused_id_in_flight_is_refused_at_once_as_on_the_sdk_path(tmp_path):
    answers: dict[str, list[Any]] = {}
    with anyio.fail_after(120):
        for relay in ("0", "1"):
            answers[relay] = await reused_id_session(tmp_path, relay)
    assert answers["1"] == answers["0"]
    assert answers["1"][0] == ("7", -32600, True)

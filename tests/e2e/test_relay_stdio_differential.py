"""`bastion wrap` through the relay against the reference: the same scripted sessions over stdio.

A real SDK client runs the scripts of `test_relay_differential` against the probe server
directly, then through `bastion wrap` (a real subprocess) serving it with the SDK's server
stack (`BASTION_RELAY=0`, the reference) and with Bastion's relay (`BASTION_RELAY=1`), in
both protocol eras. What the agent sees must be the same, and so must the audit log; so
must the answers to odd, malformed and hostile lines, in either era, from `bastion wrap`
and `bastion wrap --all`. A 2026-era session never loads the SDK.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.abc import Process
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from bastion.audit.chain import decode_row
from bastion.audit.export import event_record
from bastion.audit.query import EventQuery
from bastion.config import BastionConfig, config_for_wrap, load_config
from bastion.gateway.assembly import open_audit
from bastion.relay import RELAY_ENV
from tests.e2e.conftest import BASTION, write_config
from tests.e2e.test_idle_gateway_imports import imported
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


def wrap_target(tmp_path: Path, relay: str, mode: str, every: bool) -> tuple[list[str], BastionConfig]:
    """`bastion wrap` of the probe (`every`: `bastion wrap --all` of a config serving it), and
    the configuration it runs with (where its audit log is)."""
    if not every:
        data_dir = Path(wrap_env(tmp_path, relay)["BASTION_DATA_DIR"]).resolve()
        return wrap_command(mode), config_for_wrap(probe(mode)).model_copy(update={"data_dir": data_dir})
    command = probe(mode)
    server = {"command": command[0], "args": command[1:], "sandbox": {"enabled": False}}
    path = write_config(tmp_path / f"all-{relay}", {"probe": server})
    return [BASTION, "wrap", "--all", "--config", str(path)], load_config(path)


async def audit_records(config: BastionConfig) -> list[str]:
    """The `call.requested` and `call.completed` records of a finished wrap, comparable across paths (sorted)."""
    store = open_audit(config)
    await store.open()
    try:
        rows = store.rows(EventQuery(types=("call.requested", "call.completed")), newest_first=False)
        events = [event_record(decode_row(row)) for row in rows]
    finally:
        await store.close()
    kept = ("type", "server", "tool", "method", "endpoint", "transport", "arguments", "outcome", "rule", "error")
    more = ("is_error", "result_size", "agent")
    return sorted(json.dumps({k: e.get(k) for k in (*kept, *more)}, sort_keys=True) for e in events)


@asynccontextmanager
async def wrapped(tmp_path: Path, relay: str, mode: str, agent: Agent) -> AsyncIterator[Client]:
    command = wrap_command(mode)
    params = StdioServerParameters(command=command[0], args=command[1:], env=wrap_env(tmp_path, relay))
    async with Client(params, mode=mode, **agent.options()) as client:  # type: ignore[arg-type]
        yield client


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_wrap_through_the_relay_shows_the_agent_what_the_sdk_path_and_the_server_show(tmp_path, mode):
    seen: dict[str, tuple[Steps, Agent]] = {}
    audited: dict[str, list[str]] = {}
    with anyio.fail_after(120):
        agent = Agent()
        async with direct(mode, agent) as client:
            seen["direct"] = (await script(client, agent, mode), agent)
        for name, relay in (("sdk", "0"), ("relay", "1")):
            agent = Agent()
            async with wrapped(tmp_path, relay, mode, agent) as client:
                seen[name] = (await script(client, agent, mode), agent)
            audited[name] = await audit_records(wrap_target(tmp_path, relay, mode, every=False)[1])
    only = [("sdk", r) for r in audited["sdk"] if r not in audited["relay"]]
    only += [("relay", r) for r in audited["relay"] if r not in audited["sdk"]]
    assert only == [], "\n".join(map(repr, only))
    assert audited["relay"] == audited["sdk"]
    assert any('"method": "tools/call"' in r and '"transport": "stdio"' in r for r in audited["relay"])
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
        error = message["error"]
        kept = {"code": error.get("code"), **({"data": error["data"]} if "data" in error else {})}
        return {**message, "error": kept}
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
    assert ("unknown method", [{"jsonrpc": "2.0", "id": 17, "error": {"code": -32601, "data": "no/such"}}]) in answers[
        "1"
    ]
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


MODERN_META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientCapabilities": {},
    "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"},
}
Line = tuple[str, Any, bool]
"""A label, what the agent writes (a message, or a line as is), and whether request `ID` is answered."""


def enveloped(method: str, params: dict[str, Any] | None = None, meta: Any = MODERN_META) -> dict[str, Any]:
    """A 2026-07-28 request with id `ID`: its envelope in `params._meta`."""
    return {"jsonrpc": "2.0", "id": "ID", "method": method, "params": {**(params or {}), "_meta": meta}}


def modern_lines(tool_prefix: str) -> list[Line]:
    """What a 2026-era agent may write once its first request has opened the era, well-formed or not."""
    surrogate = json.dumps(enveloped("tools/list", {"x": "SURROGATE"})).replace("SURROGATE", "\udcff")
    counting = enveloped("tools/call", {"name": f"{tool_prefix}count", "arguments": {"steps": 2}})
    counting["params"]["_meta"] = {**MODERN_META, "progressToken": "tok"}
    return [
        ("tools/list", enveloped("tools/list"), True),
        ("echo", enveloped("tools/call", {"name": f"{tool_prefix}echo", "arguments": {"text": "hi"}}), True),
        ("progress", counting, True),
        ("no such tool", enveloped("tools/call", {"name": f"{tool_prefix}missing", "arguments": {}}), True),
        ("tools/call without a name", enveloped("tools/call"), True),
        ("read", enveloped("resources/read", {"uri": "probe://note"}), True),
        ("unknown method", enveloped("no/such"), True),
        ("ping", enveloped("ping"), True),
        ("not of the era: setLevel", enveloped("logging/setLevel", {"level": "debug"}), True),
        ("not of the era: subscribe", enveloped("resources/subscribe", {"uri": "probe://note"}), True),
        ("subscriptions/listen", enveloped("subscriptions/listen"), True),
        ("server/discover again", enveloped("server/discover"), True),
        ("initialize", {**INIT, "id": "ID"}, True),
        (
            "initialize with the envelope",
            {**INIT, "id": "ID", "params": {**INIT["params"], "_meta": MODERN_META}},
            True,
        ),
        ("no envelope", {"jsonrpc": "2.0", "id": "ID", "method": "tools/list"}, True),
        (
            "envelope without capabilities",
            enveloped("tools/list", meta={"io.modelcontextprotocol/protocolVersion": "2026-07-28"}),
            True,
        ),
        (
            "a handshake version",
            enveloped("tools/list", meta={**MODERN_META, "io.modelcontextprotocol/protocolVersion": "2025-11-25"}),
            True,
        ),
        (
            "a version not a string",
            enveloped("tools/list", meta={**MODERN_META, "io.modelcontextprotocol/protocolVersion": 7}),
            True,
        ),
        ("_meta not an object", enveloped("tools/list", meta="x"), True),
        ("a lone surrogate escaped", surrogate, True),
        ("params not an object", {"jsonrpc": "2.0", "id": "ID", "method": "tools/list", "params": [1]}, False),
        ("wrong version field", {**enveloped("tools/list"), "jsonrpc": "1.0"}, False),
        ("an array", [enveloped("tools/list")], False),
        ("id is a float", {**enveloped("tools/list"), "id": 2.5}, False),
        ("id is null", {**enveloped("tools/list"), "id": None}, False),
        ("not json", "{not json", False),
        ("not an object", "hello", False),
        ("roots changed", {"jsonrpc": "2.0", "method": "notifications/roots/list_changed"}, False),
        ("unknown notification", {"jsonrpc": "2.0", "method": "notifications/whatever"}, False),
        (
            "cancel of nothing",
            {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 5}},
            False,
        ),
        ("a request as a notification", {k: v for k, v in enveloped("tools/list").items() if k != "id"}, False),
        ("stray response", {"jsonrpc": "2.0", "id": 99, "result": {}}, False),
        ("stray error", {"jsonrpc": "2.0", "id": 98, "error": {"code": 1, "message": "x"}}, False),
        ("empty line", "", False),
    ]


MODERN_OPENING: list[Line] = [
    ("not json first", "{not json", False),
    ("initialized notice first", {"jsonrpc": "2.0", "method": "notifications/initialized"}, False),
    ("stray response first", {"jsonrpc": "2.0", "id": 99, "result": {}}, False),
    ("empty line first", "", False),
]
"""Lines before a 2026-era agent's first request, which decides the era."""

# A handshake-era connection that a request other than `initialize` opened: refused until the handshake.
UNINITIALIZED_LINES: list[Line] = [
    ("tools/list before the handshake", {"jsonrpc": "2.0", "id": "ID", "method": "tools/list"}, True),
    ("unknown method before the handshake", {"jsonrpc": "2.0", "id": "ID", "method": "no/such"}, True),
    ("ping before the handshake", {"jsonrpc": "2.0", "id": "ID", "method": "ping"}, True),
    ("roots changed before the handshake", {"jsonrpc": "2.0", "method": "notifications/roots/list_changed"}, False),
    ("a 2026 request on a handshake connection", enveloped("tools/list"), True),
    ("server/discover on a handshake connection", {"jsonrpc": "2.0", "id": "ID", "method": "server/discover"}, True),
    ("initialized notice", {"jsonrpc": "2.0", "method": "notifications/initialized"}, False),
    ("tools/list after the notice", {"jsonrpc": "2.0", "id": "ID", "method": "tools/list"}, True),
]


def wire(message: Any, number: int) -> str:
    """`message` as the line the agent writes, request id `ID` replaced by `number`."""
    line = message if isinstance(message, str) else json.dumps(message)
    return line.replace('"ID"', str(number))


async def lines_session(
    tmp_path: Path, relay: str, every: bool, opening: list[Line], lines: list[Line]
) -> tuple[list[Any], list[str]]:
    """What `bastion wrap` (`every`: `--all`) answers to `opening` (written at once, no fence: the
    first request decides the era) and then to each of `lines`; and what its audit log says."""
    command, config = wrap_target(tmp_path, relay, "2026-07-28", every)
    answers: list[Any] = []
    async with await anyio.open_process(command, env=wrap_env(tmp_path, relay)) as process:
        lines_ = Lines(process)
        for _, message, _ in opening:
            await lines_.send(wire(message, 0))
        for number, (label, message, answered) in enumerate(lines, start=10):
            await lines_.send(wire(message, number))
            answers.append((label, await lines_.until(1000 + number, number if answered else None)))
        assert process.stdin is not None
        await process.stdin.aclose()
        answers.append(("exit", await process.wait()))
    return answers, await audit_records(config)


def first_request(label: str, method: str) -> Line:
    return (label, enveloped(method), True)


@pytest.mark.parametrize("every", [False, True], ids=["wrap", "wrap --all"])
async def test_a_2026_session_gets_the_answers_and_audit_the_sdk_path_gives(tmp_path, every):
    """Every kind of line a 2026-era agent may write, hostile ones too: the same answers (codes and
    error data), and the same audit records, from the relay as from the SDK's stdio server."""
    prefix = "probe__" if every else ""
    lines = [first_request("server/discover", "server/discover"), *modern_lines(prefix)]
    seen: dict[str, tuple[list[Any], list[str]]] = {}
    with anyio.fail_after(120):
        for relay in ("0", "1"):
            seen[relay] = await lines_session(tmp_path, relay, every, MODERN_OPENING, lines)
    (sdk, sdk_audit), (ours, our_audit) = seen["0"], seen["1"]
    differences = [(one, other) for one, other in zip(sdk, ours, strict=True) if one != other]
    assert differences == [], "\n".join(map(repr, differences))
    only = [("sdk", r) for r in sdk_audit if r not in our_audit] + [
        ("relay", r) for r in our_audit if r not in sdk_audit
    ]
    assert only == [], "\n".join(map(repr, only))
    assert our_audit == sdk_audit
    answers = dict(ours)
    assert answers["unknown method"][0]["error"]["code"] == -32601
    assert answers["initialize"][0]["error"]["code"] == -32022
    assert answers["progress"][0]["method"] == "notifications/progress"
    assert "result" in answers["echo"][0]
    assert answers["exit"] == 0
    assert any('"method": "no/such"' in r and '"error": "Method not found"' in r for r in our_audit)


@pytest.mark.parametrize("every", [False, True], ids=["wrap", "wrap --all"])
async def test_a_connection_opened_without_the_handshake_is_refused_until_it_as_on_the_sdk_path(tmp_path, every):
    seen: dict[str, tuple[list[Any], list[str]]] = {}
    with anyio.fail_after(120):
        for relay in ("0", "1"):
            seen[relay] = await lines_session(tmp_path, relay, every, [], UNINITIALIZED_LINES)
    assert seen["1"] == seen["0"]
    answers = dict(seen["1"][0])
    assert answers["tools/list before the handshake"][0]["error"]["code"] == -32602
    assert answers["a 2026 request on a handshake connection"][0]["error"]["code"] == -32600
    assert "result" in answers["tools/list after the notice"][0]


async def test_a_2026_wrap_session_answers_without_loading_the_sdk(tmp_path):
    """From start to its first answers, a 2026-era `bastion wrap` imports none of the SDK
    (`mcp.server`, nor its client): the relay serves the era itself (`python -X importtime`)."""
    stderr = tmp_path / "stderr.txt"
    command = [sys.executable, "-X", "importtime", "-m", "bastion.cli.main", *wrap_command("2026-07-28")[1:]]
    calls = [
        enveloped("server/discover"),
        enveloped("tools/list"),
        enveloped("tools/call", {"name": "echo", "arguments": {"text": "hi"}}),
    ]
    with anyio.fail_after(60), stderr.open("w", encoding="utf-8") as errors:
        async with await anyio.open_process(command, env=wrap_env(tmp_path, "1"), stderr=errors) as process:
            lines = Lines(process)
            answers = []
            for number, call in enumerate(calls, start=1):
                await lines.send(wire(call, number))
                answers.append(await lines.receive())
            assert process.stdin is not None
            await process.stdin.aclose()
            assert await process.wait() == 0
    assert [answer["id"] for answer in answers] == [1, 2, 3]
    assert answers[0]["result"]["supportedVersions"] == ["2026-07-28"]
    assert answers[2]["result"]["content"][0]["text"] == "hi"
    modules = imported(stderr)
    assert "bastion.relay.stdio_front" in modules  # the measurement saw the wrap's imports
    assert any(m.startswith("mcp_types.") for m in modules)  # the 2026 era's answers are shaped by its models
    assert [m for m in modules if m == "mcp.server" or m.startswith("mcp.server.")] == []
    assert [m for m in modules if m == "mcp" or m.startswith("mcp.")] == []

"""The front-door fuzzer: Hypothesis strategies for hostile HTTP requests, and the target they hit.

Shared by `test_front_door_fuzz.py` (a few hundred cases in CI) and
`benchmarks/fuzz_front_door.py` (a longer run printing cases/s and findings). A case is a
JSON-RPC body (or not JSON at all), headers and a session id, sent to a real gateway in front
of a server that counts the calls it receives. The properties:

- the gateway never answers 5xx to bad input, and always answers;
- no call reaches the server without its `call.requested` record in the audit log;
- the gateway keeps serving (a well-formed call on a fresh session still works).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
from hypothesis import strategies as st

from tests.security.front_door import FrontDoor, front_door

SERVER = "counter"
COUNTING_SERVER = Path(__file__).parent / "servers" / "counting_server.py"
PROTOCOL = "2025-06-18"
MCP_ACCEPT = "application/json, text/event-stream"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
request_ids = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.text(max_size=20),
    st.none(),
    st.booleans(),
    st.floats(allow_nan=False),
    st.lists(st.integers(), max_size=2),
)
methods = st.sampled_from(
    [
        "tools/call",
        "tools/call",
        "tools/list",
        "initialize",
        "ping",
        "resources/list",
        "resources/read",
        "prompts/get",
        "server/discover",
        "logging/setLevel",
        "notifications/initialized",
        "notifications/cancelled",
    ]
) | st.text(max_size=30)
tool_params = st.fixed_dictionaries(
    {"name": st.sampled_from(["echo", "echo", "counter__echo", "nope"]) | st.text(max_size=20)},
    optional={"arguments": st.dictionaries(st.text(max_size=10), json_values, max_size=4) | json_values},
)


@st.composite
def messages(draw: st.DrawFn) -> Any:
    """A JSON-RPC message, well-formed or bent: fields dropped, wrong types, odd ids."""
    message: dict[str, Any] = {}
    if draw(st.booleans()) or draw(st.booleans()):
        message["jsonrpc"] = draw(st.sampled_from(["2.0", "2.0", "1.0", 2]) | json_values)
    method = draw(methods)
    if draw(st.integers(0, 9)) > 0:
        message["method"] = method
    if draw(st.integers(0, 5)) > 0:
        message["id"] = draw(request_ids)
    if draw(st.integers(0, 4)) > 0:
        message["params"] = draw(tool_params if method == "tools/call" else json_values)
    if draw(st.integers(0, 9)) == 0:
        message[draw(st.text(max_size=8))] = draw(json_values)
    return message


def _dumps(value: Any) -> bytes:
    return json.dumps(value).encode()


calls = st.builds(
    lambda request_id, arguments, extra: {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {"name": "echo", "arguments": arguments, **extra},
    },
    st.integers(min_value=0, max_value=2**31) | st.text(max_size=12),
    st.fixed_dictionaries({}, optional={"text": st.text(max_size=40) | json_values}),
    st.dictionaries(st.sampled_from(["_meta", "task", "name", "arguments"]), json_values, max_size=1),
)
"""Calls that are well-formed, or nearly: these are the ones that may reach the server."""

bodies = st.one_of(
    calls.map(_dumps),
    calls.map(_dumps),
    calls.map(_dumps),
    messages().map(_dumps),
    messages().map(_dumps),
    messages().map(_dumps),
    st.lists(messages(), max_size=3).map(_dumps),
    json_values.map(_dumps),
    st.binary(max_size=200),
    st.integers(min_value=1, max_value=5000).map(lambda depth: b"[" * depth + b"]" * depth),
    st.integers(min_value=1, max_value=3000).map(lambda depth: b'{"a":' * depth + b"1" + b"}" * depth),
)
header_text = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=60)


@dataclass(frozen=True)
class Case:
    """One request, with the session and credential it uses named (made real by the target)."""

    http_method: str
    route: str
    """`mcp`, `messages`, or `unknown-server`."""
    credential: str
    session: str
    """`valid`, `other-agent`, `none` or a literal garbage id."""
    body: bytes
    headers: dict[str, str]


cases = st.builds(
    Case,
    http_method=st.sampled_from(["POST"] * 12 + ["GET", "DELETE", "PUT"]),
    route=st.sampled_from(["mcp"] * 7 + ["aggregate", "messages", "unknown-server"]),
    credential=st.sampled_from(["agent"] * 6 + ["jwt", "none", "malformed", "scoped_agent"]),
    session=st.sampled_from(["valid"] * 5 + ["other-agent", "none"]) | header_text,
    body=bodies,
    headers=st.fixed_dictionaries(
        {},
        optional={
            "Content-Type": st.sampled_from(["application/json", "text/plain", "application/json; charset=utf-8"])
            | header_text,
            "Accept": st.sampled_from([MCP_ACCEPT, "application/json", "text/event-stream", "*/*"]) | header_text,
            "MCP-Protocol-Version": st.sampled_from([PROTOCOL, "2025-03-26", "2026-07-28", "1999-01-01"]) | header_text,
        },
    ),
)


@dataclass
class FuzzTarget:
    """The gateway under fuzz: sessions it opened, and the counter's record of what it received."""

    door: FrontDoor
    calls_file: Path
    http: httpx2.Client
    sessions: dict[str, str] = field(default_factory=dict)
    sent: int = 0

    def session(self, credential: str) -> str:
        if credential not in self.sessions:
            self.sessions[credential] = open_session(self.http, self.door, credential)
        return self.sessions[credential]

    def send(self, case: Case) -> int:
        """Send `case`; its HTTP status (the body of an event stream is read to its end)."""
        self.sent += 1
        headers = {"Accept": MCP_ACCEPT, "Content-Type": "application/json", **case.headers}
        authorization = self.door.credentials[case.credential]
        if authorization is not None:
            headers["Authorization"] = authorization
        session = {"valid": self.session("agent"), "other-agent": self.session("jwt"), "none": ""}.get(
            case.session, case.session
        )
        server = "no-such-server" if case.route == "unknown-server" else SERVER
        path = "/mcp" if case.route == "aggregate" else f"/servers/{server}/mcp"
        if case.route == "messages":
            path = f"/servers/{server}/messages/?session_id={session}"
        elif session:
            headers["Mcp-Session-Id"] = session
        with self.http.stream(case.http_method, path, headers=headers, content=case.body) as response:
            if case.http_method != "GET":
                response.read()  # a GET may be a standing event stream: its status is the answer
            status = response.status_code
        if case.http_method == "DELETE" and status == 200 and case.session == "valid":
            self.sessions.pop("agent", None)  # that case ended our session: open a new one next time
        return status

    def calls_received(self) -> int:
        return len(self.calls_file.read_text(encoding="utf-8").splitlines()) if self.calls_file.exists() else 0

    def calls_audited(self) -> int:
        return sum(
            1
            for event in self.door.events()
            if event["type"] == "call.requested" and event["server"] == SERVER and event["method"] == "tools/call"
        )

    def still_serves(self) -> bool:
        """A well-formed call on a fresh session is answered and reaches the server."""
        before = self.calls_received()
        session = open_session(self.http, self.door, "agent")
        call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "echo", "arguments": {}}}
        headers = mcp_headers(self.door, "agent") | {"Mcp-Session-Id": session}
        answer = self.http.post(f"/servers/{SERVER}/mcp", content=_dumps(call), headers=headers)
        return answer.status_code == 200 and '"result"' in answer.text and self.calls_received() == before + 1


def mcp_headers(door: FrontDoor, credential: str) -> dict[str, str]:
    return {
        "Accept": MCP_ACCEPT,
        "Content-Type": "application/json",
        "MCP-Protocol-Version": PROTOCOL,
        "Authorization": str(door.credentials[credential]),
    }


def open_session(http: httpx2.Client, door: FrontDoor, credential: str) -> str:
    initialize = {
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {"protocolVersion": PROTOCOL, "capabilities": {}, "clientInfo": {"name": "fuzz", "version": "1"}},
    }
    headers = mcp_headers(door, credential)
    opened = http.post(f"/servers/{SERVER}/mcp", content=_dumps(initialize), headers=headers)
    assert opened.status_code == 200, opened.text
    session = opened.headers["mcp-session-id"]
    initialized = _dumps({"jsonrpc": "2.0", "method": "notifications/initialized"})
    done = http.post(f"/servers/{SERVER}/mcp", content=initialized, headers=headers | {"Mcp-Session-Id": session})
    assert done.status_code == 202, done.text
    return session


@contextmanager
def fuzz_target(folder: Path) -> Iterator[FuzzTarget]:
    """A gateway with the counting server, and an HTTP client to hit it with."""
    calls_file = folder / "calls.txt"
    counter = {"command": sys.executable, "args": [str(COUNTING_SERVER), str(calls_file)], "sandbox": False}
    with (
        front_door(folder, more_servers={SERVER: counter}, max_body_bytes=64 * 1024) as door,
        httpx2.Client(base_url=door.base_url, timeout=30) as http,
    ):
        yield FuzzTarget(door, calls_file, http)

"""E2E: bad input gets a clear refusal, and never stops the gateway serving anyone else.

Requirements covered (real `bastion up`, raw HTTP with httpx2, real SDK clients):
- malformed JSON is HTTP 400 with a JSON-RPC parse error; a batch (array) or a message of the
  wrong shape is a 4xx with a JSON-RPC error; an unknown method is -32601;
- a body over `max_body_bytes` is 413 (a body at the limit is served);
- a bad config file makes `bastion up` and the other config-reading commands exit 2, naming
  the file and the key;
- after each of these, another agent's real SDK call through the gateway still works.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest

from tests.e2e.clients import connect
from tests.e2e.conftest import VENV_BIN, RunningGateway, run_cli, start_gateway, write_config

LEGACY_VERSION = "2025-11-25"
MODERN_VERSION = "2026-07-28"
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
CLIENT_INFO = {"name": "e2e-bad-input", "version": "1"}
INITIALIZE: dict[str, Any] = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": LEGACY_VERSION, "capabilities": {}, "clientInfo": CLIENT_INFO},
}
MODERN_META: dict[str, Any] = {
    "io.modelcontextprotocol/protocolVersion": MODERN_VERSION,
    "io.modelcontextprotocol/clientInfo": CLIENT_INFO,
    "io.modelcontextprotocol/clientCapabilities": {},
}
PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS = -32700, -32600, -32601, -32602

ERAS = [
    pytest.param("legacy-new", id="legacy-no-session"),
    pytest.param("legacy-session", id="legacy-in-session"),
    pytest.param("modern", id="2026-07-28"),
]
"""Where a bad message is sent: opening a legacy session, inside one, or as a stateless 2026 request."""


class Prober:
    """Sends raw messages to `time` as one agent, in one protocol era."""

    def __init__(self, gateway: RunningGateway, token: str, era: str) -> None:
        self.gateway = gateway
        self.token = token
        self.era = era
        self.session_id: str | None = None
        if era == "legacy-session":
            self.session_id = self._open_session()

    def headers(self, method: str | None = None) -> dict[str, str]:
        headers = {**MCP_HEADERS, "Authorization": f"Bearer {self.token}"}
        if self.era == "modern":
            headers["mcp-protocol-version"] = MODERN_VERSION
            if method is not None:
                headers["mcp-method"] = method
        else:
            headers["mcp-protocol-version"] = LEGACY_VERSION
        if self.session_id is not None:
            headers["mcp-session-id"] = self.session_id
        return headers

    def post(self, content: bytes | str, method: str | None = None) -> httpx2.Response:
        return httpx2.post(self.gateway.url("time"), headers=self.headers(method), content=content, timeout=30)

    def request(self, method: str, request_id: int = 7, params: dict[str, Any] | None = None) -> httpx2.Response:
        params = dict(params or {})
        if self.era == "modern":
            params["_meta"] = MODERN_META
        body = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}
        return self.post(json.dumps(body), method)

    def _open_session(self) -> str:
        opened = self.post(json.dumps(INITIALIZE))
        assert opened.status_code == 200, opened.text
        self.session_id = opened.headers["mcp-session-id"]
        done = self.post(json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        assert done.status_code == 202, done.text
        return self.session_id

    def assert_still_usable(self) -> None:
        """The session (or stateless door) that got the bad message still answers a good one."""
        if self.era == "legacy-new":
            return
        answer = self.request("tools/list", request_id=99)
        assert answer.status_code == 200, answer.text
        reply = message_of(answer)
        assert reply["id"] == 99
        assert "get_current_time" in {tool["name"] for tool in reply["result"]["tools"]}


def message_of(response: httpx2.Response) -> dict[str, Any]:
    """The JSON-RPC message in a JSON answer or a one-event SSE answer."""
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        data = [line.removeprefix("data:").strip() for line in response.text.splitlines() if line.startswith("data:")]
        assert len(data) == 1, response.text
        return json.loads(data[0])
    return response.json()


def assert_jsonrpc_error(response: httpx2.Response, status: int, codes: tuple[int, ...]) -> dict[str, Any]:
    """An HTTP `status` answer carrying a JSON-RPC error with one of `codes`; the error object."""
    assert response.status_code == status, f"expected HTTP {status}, got {response.status_code}: {response.text}"
    assert response.headers["content-type"].startswith("application/json"), response.headers
    message = response.json()
    assert message["jsonrpc"] == "2.0"
    assert message["id"] is None, message
    assert message["error"]["code"] in codes, message
    return message["error"]


def new_agent_token(gateway: RunningGateway, prefix: str) -> str:
    return gateway.create_token(f"{prefix}-{uuid.uuid4().hex[:8]}")


async def assert_gateway_serves(gateway: RunningGateway, token: str) -> None:
    """A real SDK client, as another agent, calls a tool on `time` through the gateway."""
    with anyio.fail_after(60):
        async with connect(gateway, "time", token=token) as client:
            result = await client.call_tool("get_current_time", {"timezone": "UTC"})
    assert not result.is_error, result
    assert '"timezone": "UTC"' in result.content[0].text


@pytest.fixture(scope="module")
def prober_token(gateway: RunningGateway) -> str:
    return new_agent_token(gateway, "prober")


@pytest.fixture(scope="module")
def bystander_token(gateway: RunningGateway) -> str:
    return new_agent_token(gateway, "bystander")


MALFORMED_JSON = [
    pytest.param(b"{not json", id="bare-word-key"),
    pytest.param(b'{"jsonrpc": "2.0", "id": 1, "method": "ping"', id="truncated"),
    pytest.param(b"", id="empty"),
    pytest.param(b"\xff\xfe{\x00", id="not-utf8"),
]


@pytest.mark.anyio
@pytest.mark.parametrize("era", ERAS)
@pytest.mark.parametrize("body", MALFORMED_JSON)
async def test_malformed_json_is_400_parse_error(
    gateway: RunningGateway, prober_token: str, bystander_token: str, era: str, body: bytes
) -> None:
    prober = Prober(gateway, prober_token, era)
    assert_jsonrpc_error(prober.post(body, "ping"), 400, (PARSE_ERROR,))
    prober.assert_still_usable()
    await assert_gateway_serves(gateway, bystander_token)


BATCHES = [
    pytest.param([], id="empty"),
    pytest.param([INITIALIZE], id="initialize"),
    pytest.param(
        [{"jsonrpc": "2.0", "id": 5, "method": "ping"}, {"jsonrpc": "2.0", "id": 6, "method": "ping"}], id="pings"
    ),
]


@pytest.mark.anyio
@pytest.mark.parametrize("era", ERAS)
@pytest.mark.parametrize("batch", BATCHES)
async def test_batch_is_refused(
    gateway: RunningGateway, prober_token: str, bystander_token: str, era: str, batch: list[Any]
) -> None:
    prober = Prober(gateway, prober_token, era)
    response = prober.post(json.dumps(batch), "ping")
    assert_jsonrpc_error(response, 400, (INVALID_REQUEST, INVALID_PARAMS))
    assert "result" not in response.text, "a request inside the batch was served"
    prober.assert_still_usable()
    await assert_gateway_serves(gateway, bystander_token)


WRONG_SHAPES = [
    pytest.param({"jsonrpc": "2.0"}, "method", id="no-id-no-method"),
    pytest.param({"id": 1}, "jsonrpc", id="only-id"),
    pytest.param({"jsonrpc": "2.0", "id": 1, "method": 5}, "method", id="method-not-string"),
    pytest.param({"jsonrpc": "1.0", "id": 1, "method": "ping"}, "jsonrpc", id="wrong-jsonrpc-version"),
    pytest.param({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": "x"}, "params", id="params-not-object"),
    pytest.param("just a string", "", id="json-string"),
    pytest.param(None, "", id="json-null"),
]


@pytest.mark.anyio
@pytest.mark.parametrize("era", ERAS)
@pytest.mark.parametrize(("message", "names"), WRONG_SHAPES)
async def test_message_of_wrong_shape_is_refused(
    gateway: RunningGateway, prober_token: str, bystander_token: str, era: str, message: Any, names: str
) -> None:
    prober = Prober(gateway, prober_token, era)
    error = assert_jsonrpc_error(prober.post(json.dumps(message), "ping"), 400, (INVALID_REQUEST, INVALID_PARAMS))
    if era == "modern":
        assert error["code"] == INVALID_REQUEST, error
        assert "single JSON-RPC request or notification" in error["message"], error
    else:
        assert names in error["message"], f"the error does not name `{names}`: {error['message']}"
    prober.assert_still_usable()
    await assert_gateway_serves(gateway, bystander_token)


@pytest.mark.anyio
@pytest.mark.parametrize("era", [p for p in ERAS if p.values[0] != "legacy-new"])
@pytest.mark.parametrize("method", ["no/such/method", "tools/destroy", "initialize/again"])
async def test_unknown_method_is_method_not_found(
    gateway: RunningGateway, prober_token: str, bystander_token: str, era: str, method: str
) -> None:
    prober = Prober(gateway, prober_token, era)
    answer = prober.request(method, request_id=41)
    assert answer.status_code in (200, 404), answer.text
    reply = message_of(answer)
    assert reply["id"] == 41, reply
    assert reply["error"]["code"] == METHOD_NOT_FOUND, reply
    prober.assert_still_usable()
    await assert_gateway_serves(gateway, bystander_token)


# --- body size: a dedicated gateway with a small limit ---------------------------------------

BODY_LIMIT = 2048


@pytest.fixture(scope="module")
def small_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    servers = {"time": {"command": str(VENV_BIN / "mcp-server-time")}}
    config = write_config(tmp_path_factory.mktemp("small-gateway"), servers, max_body_bytes=BODY_LIMIT)
    running = start_gateway(config)
    try:
        yield running
    finally:
        running.stop()


def padded_initialize(size: int) -> bytes:
    """An initialize request of exactly `size` bytes (padding in an extra params field)."""
    empty = json.dumps({**INITIALIZE, "params": {**INITIALIZE["params"], "padding": ""}})
    body = json.dumps({**INITIALIZE, "params": {**INITIALIZE["params"], "padding": "x" * (size - len(empty))}})
    assert len(body) == size
    return body.encode()


def _chunks(data: bytes, size: int = 512) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("era", "chunked"),
    [
        pytest.param("legacy-new", False, id="opening-request"),
        pytest.param("legacy-new", True, id="opening-request-chunked"),
        pytest.param("legacy-session", False, id="in-session"),
        pytest.param("legacy-session", True, id="in-session-chunked"),
        pytest.param("modern", False, id="2026-07-28"),
    ],
)
async def test_body_over_the_limit_is_413(small_gateway: RunningGateway, era: str, chunked: bool) -> None:
    prober = Prober(small_gateway, new_agent_token(small_gateway, "big-sender"), era)
    params: dict[str, Any] = {"name": "get_current_time", "arguments": {"timezone": "x" * BODY_LIMIT}}
    if era == "modern":
        params["_meta"] = MODERN_META
    body = json.dumps({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": params}).encode()
    response = prober.post(_chunks(body) if chunked else body, "tools/call")  # type: ignore[arg-type]
    assert response.status_code == 413, f"{len(body)}-byte body: HTTP {response.status_code} {response.text}"
    prober.assert_still_usable()
    await assert_gateway_serves(small_gateway, small_gateway.token)


@pytest.mark.parametrize(("size", "status"), [(BODY_LIMIT, 200), (BODY_LIMIT + 1, 413)])
def test_body_limit_boundary(small_gateway: RunningGateway, size: int, status: int) -> None:
    headers = {**MCP_HEADERS, **small_gateway.headers(), "mcp-protocol-version": LEGACY_VERSION}
    response = httpx2.post(small_gateway.url("time"), headers=headers, content=padded_initialize(size), timeout=30)
    assert response.status_code == status, response.text
    if status == 200:
        assert message_of(response)["result"]["serverInfo"]["name"] == "mcp-time"


@pytest.mark.anyio
async def test_oversized_message_on_legacy_sse_is_413(small_gateway: RunningGateway) -> None:
    token = new_agent_token(small_gateway, "sse-big-sender")
    auth = {"Authorization": f"Bearer {token}"}
    with anyio.fail_after(30):
        async with (
            httpx2.AsyncClient(base_url=small_gateway.base_url, timeout=30) as http,
            http.stream("GET", "/servers/time/sse", headers=auth) as stream,
        ):
            assert stream.status_code == 200
            lines = stream.aiter_lines()
            endpoint = await _next_data(lines)
            refused = await http.post(endpoint, content=padded_initialize(BODY_LIMIT + 1), headers=auth)
            assert refused.status_code == 413, refused.text
            accepted = await http.post(endpoint, json=INITIALIZE, headers=auth)
            assert accepted.status_code == 202, accepted.text
            reply = json.loads(await _next_data(lines))
            assert reply["id"] == 1, reply
            assert reply["result"]["serverInfo"]["name"] == "mcp-time", reply
    await assert_gateway_serves(small_gateway, small_gateway.token)


async def _next_data(lines: Any) -> str:
    async for line in lines:
        if line.startswith("data:"):
            return line.removeprefix("data:").strip()
    raise AssertionError("the SSE stream ended")


@pytest.mark.anyio
async def test_malformed_message_on_legacy_sse_is_400_and_the_stream_survives(
    gateway: RunningGateway, prober_token: str, bystander_token: str
) -> None:
    auth = {"Authorization": f"Bearer {prober_token}"}
    with anyio.fail_after(30):
        async with (
            httpx2.AsyncClient(base_url=gateway.base_url, timeout=30) as http,
            http.stream("GET", "/servers/time/sse", headers=auth) as stream,
        ):
            assert stream.status_code == 200
            lines = stream.aiter_lines()
            endpoint = await _next_data(lines)
            refused = await http.post(endpoint, content=b"{not json", headers=auth)
            assert refused.status_code == 400, refused.text
            accepted = await http.post(endpoint, json=INITIALIZE, headers=auth)
            assert accepted.status_code == 202, accepted.text
            while (reply := json.loads(await _next_data(lines))).get("id") != 1:
                assert "error" in reply, f"unexpected message on the stream: {reply}"
            assert reply["result"]["serverInfo"]["name"] == "mcp-time", reply
    await assert_gateway_serves(gateway, bystander_token)


# --- bad configuration files: exit code 2, naming the file and the key -------------------------

BAD_CONFIGS = [
    pytest.param("listn: 127.0.0.1:0\nservers: {}\n", ["listn", "unknown key", "listen"], id="unknown-top-level-key"),
    pytest.param(
        "servers:\n  time:\n    command: mcp-server-time\n    comand_typo: x\n",
        ["servers.time.comand_typo", "unknown key"],
        id="unknown-server-key",
    ),
    pytest.param(
        "servers:\n  Bad_Name:\n    command: mcp-server-time\n",
        ["servers.Bad_Name", "server name"],
        id="bad-server-name",
    ),
    pytest.param("servers:\n  time:\n    command: [unclosed\n", ["invalid YAML"], id="invalid-yaml"),
    pytest.param(
        "max_body_bytes: lots\nservers:\n  time:\n    command: mcp-server-time\n", ["max_body_bytes"], id="wrong-type"
    ),
]
COMMANDS = [
    pytest.param(["up"], id="up"),
    pytest.param(["token", "list"], id="token-list"),
    pytest.param(["token", "create", "--agent", "someone"], id="token-create"),
    pytest.param(["token", "revoke", "--agent", "someone"], id="token-revoke"),
    pytest.param(["audit", "export"], id="audit-export"),
]


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(("text", "mentions"), BAD_CONFIGS)
def test_bad_config_exits_2_naming_file_and_key(
    tmp_path: Path, command: list[str], text: str, mentions: list[str]
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    done = run_cli(*command, "--config", str(path), timeout=30)
    assert done.returncode == 2, f"exit {done.returncode}; stdout: {done.stdout!r}; stderr: {done.stderr!r}"
    assert re.search(rf"{re.escape(str(path))}:\d+", done.stderr), f"file and line not named: {done.stderr!r}"
    for word in mentions:
        assert word in done.stderr, f"{word!r} not in: {done.stderr!r}"
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "bastion-data").exists(), "a bad config must not create the data folder"

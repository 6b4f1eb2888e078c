"""The relay's parse-once JSON-RPC reading: strict about shape, never crashing on hostile input."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from bastion.relay import jsonrpc
from bastion.relay.accept import accepts
from bastion.relay.params import params_ok

VALID: list[tuple[Any, type]] = [
    ({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, jsonrpc.Request),
    ({"jsonrpc": "2.0", "id": "a", "method": "tools/call", "params": {"name": "x"}}, jsonrpc.Request),
    ({"jsonrpc": "2.0", "method": "notifications/initialized"}, jsonrpc.Notification),
    ({"jsonrpc": "2.0", "id": 3, "result": {}}, jsonrpc.Response),
    ({"jsonrpc": "2.0", "id": 3, "error": {"code": -1, "message": "no"}}, jsonrpc.Response),
    # An id that is no id: a notification, as the SDK's reader takes it (nothing is answered).
    ({"jsonrpc": "2.0", "id": True, "method": "x"}, jsonrpc.Notification),
    ({"jsonrpc": "2.0", "id": 1.5, "method": "x"}, jsonrpc.Notification),
    ({"jsonrpc": "2.0", "id": None, "method": "x"}, jsonrpc.Notification),
    ({"jsonrpc": "2.0", "id": [1], "method": "x"}, jsonrpc.Notification),
]

INVALID: list[Any] = [
    [],
    "text",
    7,
    None,
    {"id": 1, "method": "x"},
    {"jsonrpc": "1.0", "id": 1, "method": "x"},
    {"jsonrpc": "2.0", "id": 1.5, "result": {}},
    {"jsonrpc": "2.0", "id": 1, "method": 5},
    {"jsonrpc": "2.0", "id": 1, "method": "x", "params": [1, 2]},
    {"jsonrpc": "2.0", "id": 1, "method": "x", "params": "p"},
    {"jsonrpc": "2.0", "id": 1, "result": []},
    {"jsonrpc": "2.0", "id": 1, "error": {"code": "x", "message": "m"}},
    {"jsonrpc": "2.0", "id": 1, "error": {"code": True, "message": "m"}},
    {"jsonrpc": "2.0", "id": 1},
    {"jsonrpc": "2.0"},
]


@pytest.mark.parametrize(("raw", "kind"), VALID)
def test_well_formed_messages_are_read_as_their_kind(raw: Any, kind: type) -> None:
    assert isinstance(jsonrpc.classify(raw), kind)


@pytest.mark.parametrize("raw", INVALID)
def test_malformed_messages_are_refused(raw: Any) -> None:
    with pytest.raises(jsonrpc.Invalid):
        jsonrpc.classify(raw)


def test_answers_are_serialized_once_as_json_rpc() -> None:
    assert orjson.loads(jsonrpc.result_bytes(1, {"a": 1})) == {"jsonrpc": "2.0", "id": 1, "result": {"a": 1}}
    error = orjson.loads(jsonrpc.error_bytes(None, -32600, "bad", {"why": 1}))
    assert error == {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "bad", "data": {"why": 1}}}
    assert "data" not in orjson.loads(jsonrpc.error_bytes(2, -1, "m"))["error"]


@pytest.mark.parametrize(
    ("method", "params", "ok"),
    [
        ("tools/call", {"name": "echo", "arguments": {"a": 1}}, True),
        ("tools/call", {"name": "echo"}, True),
        ("tools/call", {"arguments": {}}, False),
        ("tools/call", {"name": 3}, False),
        ("tools/call", {"name": "echo", "arguments": [1]}, False),
        ("tools/call", None, False),
        ("tools/list", None, True),
        ("tools/list", {"cursor": "c"}, True),
        ("tools/list", {"cursor": 5}, False),
        ("resources/read", {"uri": "file:///x"}, True),
        ("resources/read", {}, False),
        ("prompts/get", {"name": "p", "arguments": {"k": "v"}}, True),
        ("completion/complete", {"ref": {}, "argument": {}}, True),
        ("completion/complete", {"ref": {}}, False),
        ("logging/setLevel", {"level": "debug"}, True),
        ("tools/list", {"_meta": {"progressToken": 1}}, True),
        ("tools/list", {"_meta": {"progressToken": True}}, False),
        ("tools/list", {"_meta": {"progressToken": 1.5}}, False),
        ("tools/list", {"_meta": []}, False),
    ],
)
def test_params_are_checked_minimally_and_strictly(method: str, params: Any, ok: bool) -> None:
    assert params_ok(method, params) is ok


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("application/json, text/event-stream", (True, True)),
        ("*/*", (True, True)),
        ("application/*;q=0.9, text/*", (True, True)),
        ("application/json", (True, False)),
        ("", (False, False)),
    ],
)
def test_accept_header_rules(accept: str, expected: tuple[bool, bool]) -> None:
    assert accepts(accept) == expected

"""`request.refused` coalescing, the front door's body checks and the status key (issue 13, item 3)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from bastion.audit.events import AuditEvent, AuthFailed, RequestRefused
from bastion.front.status_key import is_status_key, read_status_key, write_status_key
from bastion.proxy.refusals import RefusalRecorder
from bastion.relay.front_checks import Judged, Refusal, judge


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_020.0

    def __call__(self) -> float:
        return self.now


def test_a_flood_is_two_rows_per_reason_per_minute_and_every_refusal_is_counted() -> None:
    recorded: list[AuditEvent] = []
    clock = Clock()
    refusals = RefusalRecorder(recorded.append, clock)
    for n in range(1000):
        refusals.refused("parse_error", 400, agent=f"a{n % 3}", client="10.0.0.9")
        refusals.refused("batch", 400)
    clock.now += 60
    refusals.refused("parse_error", 400)
    refusals.flush(everything=True)
    events = [e for e in recorded if isinstance(e, RequestRefused)]
    parse = [e for e in events if e.reason == "parse_error"]
    assert [(e.count, e.coalesced) for e in parse] == [(1, False), (999, True), (1, False)]
    assert sum(e.count for e in events if e.reason == "batch") == 1000
    assert len(events) == 5


def test_authentication_failures_coalesce_per_status_reason_and_agent() -> None:
    recorded: list[AuditEvent] = []
    refusals = RefusalRecorder(recorded.append, Clock())
    for n in range(500):
        refusals.auth_failed("missing bearer token", 401, agent=None, server=None, path=f"/p{n}", client="10.0.0.9")
    refusals.auth_failed("no access", 403, agent="alice", server="git", path="/servers/git/mcp", client=None)
    refusals.auth_failed("no access", 403, agent="bob", server="git", path="/servers/git/mcp", client=None)
    refusals.flush(everything=True)
    assert [(e.agent, e.count, e.coalesced) for e in recorded if isinstance(e, AuthFailed)] == [
        (None, 1, False),
        ("alice", 1, False),
        ("bob", 1, False),
        (None, 499, True),
    ]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"{", "parse_error"),
        (b"", "parse_error"),
        (b"[]", "batch"),
        (json.dumps([{"jsonrpc": "2.0", "id": 1, "method": "ping"}]).encode(), "batch"),
        (json.dumps({"jsonrpc": "2.0", "method": "tools/call", "params": {}}).encode(), "call_as_notification"),
        (json.dumps({"jsonrpc": "2.0", "method": "initialize"}).encode(), "call_as_notification"),
        (json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}).encode(), None),
        (json.dumps({"jsonrpc": "2.0", "id": 3, "method": "tools/call"}).encode(), None),
        (json.dumps({"jsonrpc": "2.0", "id": 3, "result": {}}).encode(), None),
        (b"42", None),
    ],
)
def test_the_front_door_refuses_what_must_not_reach_the_transport(body: bytes, expected: str | None) -> None:
    judged = judge(body)
    if expected is None:
        assert isinstance(judged, Judged)
    else:
        assert isinstance(judged, Refusal)
        assert judged.reason == expected


@pytest.mark.parametrize(("request_id", "key"), [(7, "7"), ("7", "7"), (True, None), (None, None), ([1], None)])
def test_ids_are_keyed_as_the_transport_keys_them(request_id: object, key: str | None) -> None:
    """The SDK keys a request's response stream by `str(id)`: 7 and "7" collide there, so here too."""
    judged = judge(json.dumps({"jsonrpc": "2.0", "id": request_id, "method": "ping"}).encode())
    assert isinstance(judged, Judged)
    assert judged.id_key == key


def test_the_status_key_is_private_fresh_at_each_start_and_compared_whole(tmp_path: Path) -> None:
    path = tmp_path / "status.key"
    first = write_status_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    second = write_status_key(path)
    assert second != first
    assert read_status_key(path) == second
    assert is_status_key(second, second)
    assert not is_status_key(second[:-1], second)
    assert not is_status_key(second, None)

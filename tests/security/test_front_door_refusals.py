"""Requests refused before the guard leave an audit trace, coalesced under floods; a second
request reusing an id in flight on its session gets a clear error at once, and the first is
still answered (issue 13, item 3).
"""

from __future__ import annotations

import contextlib
import json
import queue
import threading
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx2
import pytest

from bastion.approvals.events import ApprovalRequested
from tests.security.front_door import FrontDoor, front_door, stored_events

pytestmark = pytest.mark.e2e

MAX_BODY = 4096
MCP_HEADERS = {
    "Accept": "application/json, text/event-stream",
    "Content-Type": "application/json",
    "MCP-Protocol-Version": "2025-06-18",
}
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 0,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "refusals", "version": "1"}},
}
HELD = {"rules": [{"name": "hold-time2", "match": {"server": "time2", "tool": "get_current_time"}, "action": "ask"}]}


class ApprovalWaiter:
    """An approvals event sink: the id of each call held for approval, as it is held."""

    def __init__(self) -> None:
        self.held: queue.Queue[str] = queue.Queue()

    def record(self, event: object) -> None:
        if isinstance(event, ApprovalRequested):
            self.held.put(event.approval.id)

    def next_held(self) -> str:
        return self.held.get(timeout=30)


def deny(door: FrontDoor, approval_id: str) -> None:
    denied = httpx2.post(
        f"{door.base_url}/admin/api/approvals/{approval_id}/deny",
        headers={"Authorization": str(door.credentials["approver"])},
        json={"reason": "not now"},
        timeout=30,
    )
    assert denied.status_code == 200, denied.text


@pytest.fixture(scope="module")
def waiter() -> ApprovalWaiter:
    return ApprovalWaiter()


@pytest.fixture(scope="module")
def door(tmp_path_factory: pytest.TempPathFactory, waiter: ApprovalWaiter) -> Iterator[FrontDoor]:
    folder = tmp_path_factory.mktemp("refusals")
    with front_door(folder, {"events": waiter}, max_body_bytes=MAX_BODY, policy=HELD) as running:
        yield running


def post(door: FrontDoor, body: bytes, *, kind: str = "agent", server: str = "time", **headers: str) -> httpx2.Response:
    credential = door.credentials[kind]
    sent = {**MCP_HEADERS, **({"Authorization": credential} if credential else {}), **headers}
    return httpx2.post(f"{door.base_url}/servers/{server}/mcp", content=body, headers=sent, timeout=30)


def open_session(door: FrontDoor, *, kind: str = "agent", server: str = "time") -> str:
    opened = post(door, json.dumps(INITIALIZE).encode(), kind=kind, server=server)
    assert opened.status_code == 200, opened.text
    session = opened.headers["mcp-session-id"]
    initialized = json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}).encode()
    done = post(door, initialized, kind=kind, server=server, **{"Mcp-Session-Id": session})
    assert done.status_code == 202, done.text
    return session


def refusals(door: FrontDoor, reason: str) -> list[dict[str, Any]]:
    return [e for e in door.events() if e["type"] == "request.refused" and e["reason"] == reason]


TOOLS_CALL = {"jsonrpc": "2.0", "method": "tools/call", "params": {"name": "get_current_time", "arguments": {}}}


@pytest.mark.parametrize(
    ("reason", "body", "status"),
    [
        ("parse_error", b'{"jsonrpc": "2.0", "id": 1, "method": ', 400),
        ("batch", json.dumps([{**TOOLS_CALL, "id": 1}]).encode(), 400),
        ("call_as_notification", json.dumps(TOOLS_CALL).encode(), 400),
        ("body_too_large", json.dumps({**TOOLS_CALL, "id": 1, "pad": "x" * MAX_BODY}).encode(), 413),
    ],
)
def test_a_body_refused_before_the_guard_is_audited(door: FrontDoor, reason: str, body: bytes, status: int) -> None:
    response = post(door, body)
    assert response.status_code == status, response.text
    assert "error" in response.json(), "a JSON-RPC error says why"
    [event] = refusals(door, reason)
    assert (event["agent"], event["server"], event["status"], event["client"]) == (
        "matrix-agent",
        "time",
        status,
        "127.0.0.1",
    )
    assert event["detail"]


def test_an_unknown_or_foreign_session_is_refused_and_audited(door: FrontDoor, monkeypatch: pytest.MonkeyPatch) -> None:
    # Both refusals in one minute, whenever the test runs (it was flaky across a minute's turn).
    frozen = time.time()
    monkeypatch.setattr(door.gateway.refusals, "_clock", lambda: frozen)
    listing = json.dumps({"jsonrpc": "2.0", "id": 5, "method": "tools/list"}).encode()
    unknown = post(door, listing, **{"Mcp-Session-Id": "0123456789abcdef0123456789abcdef"})
    assert unknown.status_code == 404, unknown.text
    session = open_session(door)
    foreign = post(door, listing, kind="jwt", **{"Mcp-Session-Id": session})
    assert foreign.status_code in (403, 404), foreign.text
    # The second refusal of the minute is counted, and recorded when its minute is closed.
    door.portal.call(partial(door.gateway.refusals.flush, everything=True))
    first, counted = refusals(door, "unknown_session")
    assert (first["agent"], first["count"], first["coalesced"]) == ("matrix-agent", 1, False)
    assert (counted["agent"], counted["count"], counted["coalesced"]) == ("jwt-agent", 1, True)


def test_a_second_request_with_an_id_in_flight_is_refused_at_once_and_the_first_is_answered(
    door: FrontDoor, waiter: ApprovalWaiter
) -> None:
    session = open_session(door, server="time2")
    call = json.dumps({**TOOLS_CALL, "id": 7, "params": {"name": "get_current_time", "arguments": {"timezone": "UTC"}}})
    first: dict[str, httpx2.Response] = {}
    held = threading.Thread(
        target=lambda: first.update(answer=post(door, call.encode(), server="time2", **{"Mcp-Session-Id": session}))
    )
    held.start()
    approval_id = waiter.next_held()  # the first call is held for approval
    # The same id as a string: the transport keys both as "7", so this is the same id to it.
    again = call.replace('"id": 7', '"id": "7"')
    second = post(door, again.encode(), server="time2", **{"Mcp-Session-Id": session})
    assert second.status_code == 409, second.text
    assert "already in flight" in second.json()["error"]["message"]
    deny(door, approval_id)
    held.join(30)
    answer = first["answer"]
    assert answer.status_code == 200, answer.text
    assert '"id":7' in answer.text.replace(" ", ""), "the first request is still answered"
    [event, *_] = refusals(door, "duplicate_id")
    assert (event["agent"], event["server"], event["status"]) == ("matrix-agent", "time2", 409)


def test_a_request_naming_two_sessions_is_served_on_the_one_its_id_was_checked_against(
    door: FrontDoor, waiter: ApprovalWaiter
) -> None:
    """Two `Mcp-Session-Id` headers: the id-in-flight check and the session that serves the
    request must read the same one (the first, as Starlette does), or an id in flight on one
    session could be sent to it again by naming another session first."""
    held_on, named_first = open_session(door, server="time2"), open_session(door, server="time2")
    call = json.dumps({**TOOLS_CALL, "id": 7, "params": {"name": "get_current_time", "arguments": {"timezone": "UTC"}}})
    answers: dict[str, httpx2.Response] = {}
    held = threading.Thread(target=lambda: answers.update(held=post(door, call.encode(), server="time2",
                                                                    **{"Mcp-Session-Id": held_on})))  # fmt: skip
    held.start()
    held_id = waiter.next_held()  # id 7 is in flight on `held_on`
    headers = [*MCP_HEADERS.items(), ("Authorization", str(door.credentials["agent"]))]
    headers += [("Mcp-Session-Id", named_first), ("Mcp-Session-Id", held_on)]
    second: dict[str, httpx2.Response] = {}
    other = call.replace('"UTC"', '"Europe/Paris"').encode()  # not the same call: held on its own
    both = threading.Thread(
        target=lambda: second.update(
            answer=httpx2.post(f"{door.base_url}/servers/time2/mcp", content=other, headers=headers, timeout=30)
        )
    )
    both.start()
    deny(door, waiter.next_held())  # served, and held: on the session named first
    both.join(30)
    deny(door, held_id)
    held.join(30)
    answer = second["answer"]
    assert answer.status_code == 200, answer.text
    assert answer.headers["mcp-session-id"] == named_first


class SseSession:
    """A raw legacy SSE session: the stream read in a thread, each event queued."""

    def __init__(self, door: FrontDoor, server: str) -> None:
        self.door = door
        self.events: queue.Queue[tuple[str, str]] = queue.Queue()
        self.http = httpx2.Client(base_url=door.base_url, timeout=60)
        headers = {"Authorization": str(door.credentials["agent"]), "Accept": "text/event-stream"}
        self.reader = threading.Thread(target=self._read, args=(f"/servers/{server}/sse", headers), daemon=True)
        self.reader.start()
        kind, self.endpoint = self.events.get(timeout=30)
        assert kind == "endpoint", self.endpoint

    def _read(self, path: str, headers: dict[str, str]) -> None:
        kind = "message"
        with contextlib.suppress(Exception), self.http.stream("GET", path, headers=headers) as stream:
            for line in stream.iter_lines():
                if line.startswith("event:"):
                    kind = line.removeprefix("event:").strip()
                elif line.startswith("data:"):
                    self.events.put((kind, line.removeprefix("data:").strip()))

    def post(self, message: dict[str, Any]) -> None:
        headers = {"Authorization": str(self.door.credentials["agent"]), "Content-Type": "application/json"}
        sent = self.http.post(self.endpoint, content=json.dumps(message).encode(), headers=headers)
        assert sent.status_code == 202, sent.text

    def answer(self) -> dict[str, Any]:
        while True:
            kind, data = self.events.get(timeout=30)
            message: dict[str, Any] = json.loads(data)
            if kind == "message" and "id" in message:
                return message

    def close(self) -> None:
        self.http.close()


def test_over_legacy_sse_a_reused_id_in_flight_is_refused_at_once_and_the_first_is_answered(
    door: FrontDoor, waiter: ApprovalWaiter
) -> None:
    sse = SseSession(door, "time2")
    try:
        sse.post(INITIALIZE)
        assert sse.answer()["id"] == 0
        sse.post({"jsonrpc": "2.0", "method": "notifications/initialized"})
        call = {**TOOLS_CALL, "params": {"name": "get_current_time", "arguments": {"timezone": "UTC"}}}
        sse.post({**call, "id": 7})
        approval_id = waiter.next_held()
        sse.post({**call, "id": "7"})
        refused = sse.answer()
        assert refused["id"] == "7"
        assert "already in flight" in refused["error"]["message"]
        deny(door, approval_id)
        first = sse.answer()
        assert first["id"] == 7
        assert "result" in first, "the first request is still answered"
    finally:
        sse.close()


def test_a_flood_of_refusals_is_coalesced_not_one_row_each(tmp_path: Path) -> None:
    flood = 300
    with front_door(tmp_path) as door:
        for n in range(flood):
            assert post(door, b"[]").status_code == 400
            assert post(door, b"[]", kind="none" if n % 2 else "malformed").status_code == 401
        during = [e for e in door.events() if e["type"] in ("request.refused", "auth.failure")]
        gateway = door.gateway
    assert 1 <= len(during) <= 3 * 4, "at most two rows per kind per minute (a flood may span a minute's end)"
    refused = [e for e in stored_events(gateway) if e["type"] == "request.refused"]
    failed = [e for e in stored_events(gateway) if e["type"] == "auth.failure"]
    assert sum(e["count"] for e in refused) == flood, "every refusal is counted"
    assert sum(e["count"] for e in failed) == flood, "every authentication failure is counted"
    assert {e["reason"] for e in failed} == {"missing bearer token", "invalid, revoked or expired credential"}

from __future__ import annotations

from typing import Any

import httpx2
import pytest

from bastion.upstream.http_session import SessionWatch

pytestmark = pytest.mark.anyio

URL = "http://upstream.test/mcp"
SESSION = {"mcp-session-id": "abc"}


async def send(watch: SessionWatch, status: int, method: str = "POST", body: Any = None, **headers: str) -> None:
    """One HTTP exchange through a client carrying the watch's hook, answered with `status`."""
    transport = httpx2.MockTransport(lambda request: httpx2.Response(status, json={"jsonrpc": "2.0"}))
    async with httpx2.AsyncClient(transport=transport, event_hooks={"response": [watch.on_response]}) as client:
        await client.request(method, URL, json=body, headers=headers)


def request(request_id: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": {"name": "t"}}


async def test_a_404_for_the_session_marks_that_request_refused_and_the_session_expired() -> None:
    watch = SessionWatch()
    await send(watch, 404, body=request("bastion-1"), **SESSION)
    assert watch.expired
    assert watch.refused("bastion-1")
    assert not watch.refused("bastion-2")
    assert watch.scope.cancel_called


async def test_the_session_ends_only_once_its_requests_in_flight_are_answered() -> None:
    watch = SessionWatch()
    watch.begin()
    watch.begin()
    await send(watch, 404, body=request("bastion-1"), **SESSION)
    assert watch.expired
    assert not watch.scope.cancel_called
    watch.end()
    assert not watch.scope.cancel_called
    watch.end()
    assert watch.scope.cancel_called


@pytest.mark.parametrize(
    ("status", "method", "headers"),
    [
        (200, "POST", SESSION),
        (400, "POST", SESSION),
        (500, "POST", SESSION),
        (404, "POST", {}),  # no session yet: the 404 means something else (no such method or path)
        (404, "DELETE", SESSION),  # closing a session the server already forgot
        (404, "GET", SESSION),  # the event stream: a request is what a 404 is judged by
    ],
)
async def test_other_answers_leave_the_session_alone(status: int, method: str, headers: dict[str, str]) -> None:
    watch = SessionWatch()
    await send(watch, status, method, body=request("bastion-1") if method == "POST" else None, **headers)
    assert not watch.expired
    assert not watch.refused("bastion-1")
    assert not watch.scope.cancel_called


@pytest.mark.parametrize(
    "body",
    [
        {"jsonrpc": "2.0", "method": "notifications/roots/list_changed"},
        {"jsonrpc": "2.0", "id": "bastion-1", "result": {}},  # a relayed answer to a server's request
    ],
)
async def test_a_404_to_a_message_that_is_not_a_request_expires_the_session_but_refuses_no_request(
    body: dict[str, Any],
) -> None:
    watch = SessionWatch()
    await send(watch, 404, body=body, **SESSION)
    assert watch.expired
    assert not watch.refused("bastion-1")


async def test_request_ids_are_unique_strings_the_dispatcher_never_mints() -> None:
    watch = SessionWatch()
    ids = [watch.next_id() for _ in range(3)]
    assert len(set(ids)) == 3
    assert not any(request_id.lstrip("+-").isdigit() for request_id in ids)

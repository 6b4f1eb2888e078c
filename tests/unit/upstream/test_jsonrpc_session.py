"""Bastion's JSON-RPC client session: ids, reply routing, progress, cancellation, closing."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import anyio
import anyio.lowlevel
import orjson
import pytest
from mcp.shared.exceptions import MCPError
from mcp_types import CONNECTION_CLOSED, METHOD_NOT_FOUND, REQUEST_TIMEOUT

from bastion.rpc_error import RpcError
from bastion.upstream.jsonrpc_session import JsonRpcSession
from bastion.upstream.wire import ConnectionLost, Inbox, RequestId

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class ScriptedWire:
    """A wire whose server is the test: it sees what was sent and delivers what the test says."""

    def __init__(self, *, cancels_by_notification: bool = True) -> None:
        self.cancels_by_notification = cancels_by_notification
        self.sent: list[dict[str, Any]] = []
        self.sent_event = anyio.Event()
        self.inbox: Inbox | None = None
        self.ended = anyio.Event()
        self.broken = False

    def attach(self, inbox: Inbox) -> None:
        self.inbox = inbox

    async def send(
        self,
        payload: bytes,
        *,
        method: str | None,
        request_id: RequestId | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if self.broken:
            raise ConnectionLost("broken pipe")
        self.sent.append(orjson.loads(payload))
        self.sent_event.set()
        self.sent_event = anyio.Event()

    async def run(self) -> None:
        await self.ended.wait()

    async def next_sent(self, count: int) -> list[dict[str, Any]]:
        while len(self.sent) < count:
            await self.sent_event.wait()
        return self.sent


async def _no_request(method: str, params: dict[str, Any]) -> dict[str, Any]:
    raise MCPError(code=METHOD_NOT_FOUND, message="no")


async def _no_notification(method: str, params: dict[str, Any]) -> None:
    return None


def session_over(wire: ScriptedWire, **handlers: Any) -> JsonRpcSession:
    return JsonRpcSession(
        wire,
        name="test",
        on_request=handlers.get("on_request", _no_request),
        on_notification=handlers.get("on_notification", _no_notification),
    )


async def test_replies_reach_the_request_with_their_id_never_another() -> None:
    wire = ScriptedWire()
    session = session_over(wire)
    results: dict[str, Any] = {}
    with anyio.fail_after(5):
        async with session.running(), anyio.create_task_group() as tg:

            async def call(name: str) -> None:
                results[name] = await session.request("tools/call", {"name": name})

            tg.start_soon(call, "a")
            tg.start_soon(call, "b")
            first, second = await wire.next_sent(2)
            assert first["id"] != second["id"]
            by_name = {m["params"]["name"]: m["id"] for m in (first, second)}
            session.deliver({"jsonrpc": "2.0", "id": by_name["b"], "result": {"for": "b"}})
            session.deliver({"jsonrpc": "2.0", "id": by_name["a"], "result": {"for": "a"}})
    assert results == {"a": {"for": "a"}, "b": {"for": "b"}}


async def test_a_reply_with_an_unknown_or_repeated_id_is_dropped_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    wire = ScriptedWire()
    session = session_over(wire)
    with anyio.fail_after(5), caplog.at_level(logging.WARNING):
        async with session.running(), anyio.create_task_group() as tg:
            result: list[Any] = []

            async def call() -> None:
                result.append(await session.request("ping", None))

            tg.start_soon(call)
            (sent,) = await wire.next_sent(1)
            session.deliver({"jsonrpc": "2.0", "id": 999, "result": {"stolen": True}})
            session.deliver({"jsonrpc": "2.0", "id": sent["id"], "result": {}})
        session.deliver({"jsonrpc": "2.0", "id": sent["id"], "result": {"again": True}})
    assert result == [{}]
    assert "unknown request id 999" in caplog.text
    assert f"unknown request id {sent['id']!r}" in caplog.text


async def test_a_reply_on_another_requests_stream_is_not_taken(caplog: pytest.LogCaptureFixture) -> None:
    wire = ScriptedWire()
    session = session_over(wire)
    with anyio.fail_after(5), caplog.at_level(logging.WARNING):
        async with session.running(), anyio.create_task_group() as tg:
            outcome: list[Any] = []

            async def call() -> None:
                outcome.append(await session.request("ping", None, request_id="x-1"))

            tg.start_soon(call)
            await wire.next_sent(1)
            session.deliver({"jsonrpc": "2.0", "id": "x-2", "result": {"wrong": True}}, reply_to="x-1")
            session.deliver({"jsonrpc": "2.0", "id": "x-1", "result": {"right": True}}, reply_to="x-1")
    assert outcome == [{"right": True}]
    assert "on the stream of request 'x-1'" in caplog.text


async def test_error_replies_raise_with_code_message_and_data() -> None:
    wire = ScriptedWire()
    session = session_over(wire)
    with anyio.fail_after(5):
        async with session.running(), anyio.create_task_group() as tg:

            async def answer() -> None:
                (sent,) = await wire.next_sent(1)
                error = {"code": -32042, "message": "nope", "data": {"why": 1}}
                session.deliver({"jsonrpc": "2.0", "id": sent["id"], "error": error})

            tg.start_soon(answer)
            with pytest.raises(RpcError) as raised:
                await session.request("tools/call", {"name": "x"})
    assert (raised.value.error.code, raised.value.error.message, raised.value.error.data) == (
        -32042,
        "nope",
        {"why": 1},
    )


async def test_progress_goes_to_the_request_whose_id_is_its_token() -> None:
    wire = ScriptedWire()
    session = session_over(wire)
    seen: list[tuple[float, float | None, str | None]] = []
    got = anyio.Event()

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))
        got.set()

    with anyio.fail_after(5):
        async with session.running(), anyio.create_task_group() as tg:
            tg.start_soon(lambda: session.request("tools/call", {"name": "slow"}, on_progress=on_progress))
            (sent,) = await wire.next_sent(1)
            token = sent["params"]["_meta"]["progressToken"]
            assert token == sent["id"]
            session.deliver(
                {
                    "jsonrpc": "2.0",
                    "method": "notifications/progress",
                    "params": {"progressToken": 12345, "progress": 9},
                }
            )
            session.deliver(
                {
                    "jsonrpc": "2.0",
                    "method": "notifications/progress",
                    "params": {"progressToken": token, "progress": 1, "total": 2},
                }
            )
            await got.wait()
            session.deliver({"jsonrpc": "2.0", "id": token, "result": {}})
    assert seen == [(1.0, 2.0, None)]


async def test_a_cancelled_waiter_sends_notifications_cancelled_with_the_upstream_id() -> None:
    wire = ScriptedWire()
    session = session_over(wire)
    with anyio.fail_after(5):
        async with session.running():
            async with anyio.create_task_group() as tg:
                tg.start_soon(lambda: session.request("tools/call", {"name": "slow"}))
                (sent,) = await wire.next_sent(1)
                tg.cancel_scope.cancel()
            cancel = (await wire.next_sent(2))[1]
    assert cancel["method"] == "notifications/cancelled"
    assert cancel["params"] == {"requestId": sent["id"], "reason": "caller cancelled"}


async def test_no_cancel_notification_where_the_wire_cancels_otherwise() -> None:
    wire = ScriptedWire(cancels_by_notification=False)
    session = session_over(wire)
    with anyio.fail_after(5):
        async with session.running(), anyio.create_task_group() as tg:
            tg.start_soon(lambda: session.request("tools/call", {"name": "slow"}))
            await wire.next_sent(1)
            tg.cancel_scope.cancel()
    assert len(wire.sent) == 1


async def test_a_timed_out_request_fails_and_is_cancelled() -> None:
    wire = ScriptedWire()
    session = session_over(wire)
    with anyio.fail_after(5):
        async with session.running():
            with pytest.raises(RpcError) as raised:
                await session.request("tools/call", {"name": "slow"}, time_limit=0.05)
    assert raised.value.error.code == REQUEST_TIMEOUT
    assert wire.sent[1]["method"] == "notifications/cancelled"


async def test_every_waiter_fails_with_connection_closed_when_the_connection_ends() -> None:
    wire = ScriptedWire()
    session = session_over(wire)
    errors: list[int] = []

    async def call() -> None:
        try:
            await session.request("tools/call", {"name": "slow"})
        except RpcError as exc:
            errors.append(exc.error.code)

    with anyio.fail_after(5):
        async with session.running(), anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(call)
            await wire.next_sent(3)
            wire.ended.set()
        assert session.closed.is_set()
        with pytest.raises(RpcError) as raised:
            await session.request("ping", None)
    assert errors == [CONNECTION_CLOSED] * 3
    assert raised.value.error.code == CONNECTION_CLOSED


async def test_a_broken_wire_closes_the_session() -> None:
    wire = ScriptedWire()
    wire.broken = True
    session = session_over(wire)
    with anyio.fail_after(5):
        async with session.running():
            with pytest.raises(RpcError) as raised:
                await session.request("ping", None)
    assert raised.value.error.code == CONNECTION_CLOSED
    assert isinstance(session.failure, ConnectionLost)


async def test_server_requests_are_answered_with_the_servers_id() -> None:
    wire = ScriptedWire()

    async def on_request(method: str, params: dict[str, Any]) -> dict[str, Any]:
        if method == "roots/list":
            return {"roots": []}
        raise MCPError(code=METHOD_NOT_FOUND, message="Method not found", data=method)

    session = session_over(wire, on_request=on_request)
    with anyio.fail_after(5):
        async with session.running():
            session.deliver({"jsonrpc": "2.0", "id": "s-1", "method": "roots/list"})
            session.deliver({"jsonrpc": "2.0", "id": "s-2", "method": "bogus/thing"})
            sent = await wire.next_sent(2)
    by_id = {m["id"]: m for m in sent}
    assert by_id["s-1"]["result"] == {"roots": []}
    assert by_id["s-2"]["error"] == {"code": METHOD_NOT_FOUND, "message": "Method not found", "data": "bogus/thing"}


async def test_a_server_request_the_server_cancels_is_not_answered() -> None:
    wire = ScriptedWire()
    entered = anyio.Event()

    async def on_request(method: str, params: dict[str, Any]) -> dict[str, Any]:
        entered.set()
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    session = session_over(wire, on_request=on_request)
    with anyio.fail_after(5):
        async with session.running():
            session.deliver({"jsonrpc": "2.0", "id": 7, "method": "sampling/createMessage", "params": {}})
            await entered.wait()
            session.deliver({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 7}})
            await anyio.wait_all_tasks_blocked()
    assert wire.sent == []


async def test_progress_sent_before_the_reply_is_handed_on_first_in_order() -> None:
    wire = ScriptedWire()
    session = session_over(wire)
    seen: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        await anyio.lowlevel.checkpoint()  # a handler that yields (it relays to an agent)
        seen.append(progress)

    with anyio.fail_after(5):
        async with session.running(), anyio.create_task_group() as tg:

            async def answer() -> None:
                (sent,) = await wire.next_sent(1)
                token = sent["params"]["_meta"]["progressToken"]
                for step in (1, 2, 3):
                    params = {"progressToken": token, "progress": step}
                    session.deliver({"jsonrpc": "2.0", "method": "notifications/progress", "params": params})
                session.deliver({"jsonrpc": "2.0", "id": token, "result": {"done": True}})

            tg.start_soon(answer)
            result = await session.request("tools/call", {"name": "slow"}, on_progress=on_progress)
            assert seen == [1.0, 2.0, 3.0]
    assert result == {"done": True}

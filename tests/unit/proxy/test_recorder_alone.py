"""The recorder tells the store when a tool call's write-ahead record is `alone` (no other call in flight)."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from tests.unit.proxy.recorded import echo_request

from bastion.audit.events import AuditEvent
from bastion.audit.store import AuditStoreError
from bastion.proxy.recording import CallRecorder
from bastion.rpc_error import RpcError

pytestmark = pytest.mark.anyio


class Store:
    """Remembers how each durable record was asked for; `failing` makes records raise."""

    def __init__(self) -> None:
        self.durable: list[tuple[str, bool]] = []
        self.failing = False

    async def record(self, event: AuditEvent, *, durable: bool = True, alone: bool = False) -> None:
        if self.failing:
            raise AuditStoreError("injected")
        if durable:
            self.durable.append((event.type, alone))

    async def record_ahead(self, event: AuditEvent, *, alone: bool = False) -> None:
        await self.record(event, alone=alone)

    def record_nowait(self, event: AuditEvent) -> None:
        if self.failing:
            raise AuditStoreError("injected")


async def test_only_a_tool_call_with_no_other_in_flight_is_alone() -> None:
    store = Store()
    recorder = CallRecorder(store)  # type: ignore[arg-type]
    release = anyio.Event()

    async def held() -> dict[str, Any]:
        await release.wait()
        return {}

    async def call() -> None:
        await recorder.observe(await recorder.open(echo_request()), held)

    async with anyio.create_task_group() as tg:
        tg.start_soon(call)
        await anyio.wait_all_tasks_blocked()
        tg.start_soon(call)  # the first is still in flight
        await anyio.wait_all_tasks_blocked()
        release.set()
    assert store.durable == [("call.requested", True), ("call.requested", False)]

    async def answered() -> dict[str, Any]:
        return {}

    await recorder.observe(await recorder.open(echo_request()), answered)  # both ended: alone again
    assert store.durable[-1] == ("call.requested", True)


async def test_a_call_whose_record_failed_is_not_counted_in_flight() -> None:
    store = Store()
    recorder = CallRecorder(store, refuse_on_failure=False)  # type: ignore[arg-type]

    async def answered() -> dict[str, Any]:
        return {}

    store.failing = True
    await recorder.observe(await recorder.open(echo_request()), answered)
    store.failing = False
    await recorder.observe(await recorder.open(echo_request()), answered)
    assert store.durable == [("call.requested", True)]


async def test_a_refused_call_leaves_the_next_one_alone() -> None:
    store = Store()
    recorder = CallRecorder(store)  # type: ignore[arg-type]
    store.failing = True
    with pytest.raises(RpcError, match="audit log cannot be written"):
        await recorder.open(echo_request())
    store.failing = False

    async def answered() -> dict[str, Any]:
        return {}

    await recorder.observe(await recorder.open(echo_request()), answered)
    assert store.durable == [("call.requested", True)]

"""A write-ahead record still syncing when `record_ahead` returns (`CallRecorder.on_disk`): no
answer leaves before it is on disk, a failed sync refuses the call as a failed commit does, and
a call cancelled meanwhile leaves the sync to finish."""

from __future__ import annotations

import asyncio
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
    """Hands back each write-ahead record's sync as a future the test resolves."""

    def __init__(self) -> None:
        self.syncing: list[asyncio.Future[None]] = []

    async def record(self, event: AuditEvent, *, durable: bool = True, alone: bool = False) -> None:
        pass

    async def record_ahead(self, event: AuditEvent, *, alone: bool = False) -> asyncio.Future[None]:
        self.syncing.append(asyncio.get_running_loop().create_future())
        return self.syncing[-1]

    def record_nowait(self, event: AuditEvent) -> None:
        pass


async def denied() -> dict[str, Any]:
    return {"content": [{"type": "text", "text": "denied"}], "isError": True}


async def test_an_answer_without_forwarding_waits_for_the_record_on_disk() -> None:
    store = Store()
    recorder = CallRecorder(store)  # type: ignore[arg-type]
    answers: list[Any] = []

    async def call() -> None:
        answers.append(await recorder.observe(await recorder.open(echo_request()), denied))

    async with anyio.create_task_group() as tg:
        tg.start_soon(call)
        await anyio.wait_all_tasks_blocked()
        assert answers == [], "answered before its write-ahead record was on disk"
        store.syncing[0].set_result(None)
    assert answers[0]["isError"] is True


@pytest.mark.parametrize(("refuse", "answered"), [(True, False), (False, True)])
async def test_a_failed_sync_is_a_failed_write(refuse: bool, answered: bool) -> None:
    store = Store()
    failures: list[AuditStoreError] = []
    recorder = CallRecorder(store, refuse_on_failure=refuse, on_failure=failures.append)  # type: ignore[arg-type]
    opened = await recorder.open(echo_request())
    store.syncing[0].set_exception(AuditStoreError("fdatasync failed (injected)"))
    if answered:
        assert (await recorder.observe(opened, denied))["isError"] is True
    else:
        with pytest.raises(RpcError, match="audit log cannot be written"):
            await recorder.observe(opened, denied)
    assert [str(failure) for failure in failures] == ["fdatasync failed (injected)"]
    # Ended all the same: the next call is alone again.
    assert recorder._tool_calls_open == 0


async def test_a_call_cancelled_while_its_record_syncs_is_ended() -> None:
    store = Store()
    recorder = CallRecorder(store)  # type: ignore[arg-type]
    with anyio.move_on_after(0) as scope:  # cancelled at its first wait: the sync
        await recorder.observe(await recorder.open(echo_request()), denied)
    assert scope.cancelled_caught
    assert recorder._tool_calls_open == 0
    assert store.syncing[0].cancelled()

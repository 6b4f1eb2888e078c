"""A call's `call.verdict` and `call.completed` are recorded on the loop's next turn: after the
caller has written what it can (the request to the server, the answer to the agent), in order."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import anyio
import pytest
from tests.unit.proxy.recorded import echo_request

from bastion.audit.events import AuditEvent, CallCompleted
from bastion.audit.query import EventQuery
from bastion.audit.sqlite_store import SqliteAuditStore
from bastion.audit.store import AuditStoreError
from bastion.compact_json import compact_json
from bastion.model import Decision, Verdict
from bastion.proxy import recording
from bastion.proxy.recording import CallRecorder, current_call

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Store:
    """Remembers every event recorded, and whether its task had yielded since the answer was returned."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.failing = False

    async def record(self, event: AuditEvent, *, durable: bool = True, alone: bool = False) -> None:
        self.events.append(event.type)

    async def record_ahead(self, event: AuditEvent, *, alone: bool = False) -> None:
        await self.record(event, alone=alone)

    def record_nowait(self, event: AuditEvent) -> None:
        if self.failing:
            raise AuditStoreError("injected")
        self.events.append(event.type)


async def test_the_verdict_and_the_ending_are_recorded_once_the_caller_yields_in_order() -> None:
    store = Store()
    recorder = CallRecorder(store)  # type: ignore[arg-type]
    seen_while_forwarding: list[str] = []

    async def forward() -> dict[str, Any]:
        state = current_call.get()
        assert state is not None
        state.decide(Verdict(Decision.ALLOW))
        seen_while_forwarding.extend(store.events)  # the request goes out before the verdict is encoded
        await anyio.lowlevel.checkpoint()  # waiting for the server's answer
        seen_while_forwarding.extend(store.events)
        return {"content": []}

    await recorder.observe(await recorder.open(echo_request()), forward)
    answered = list(store.events)  # the agent's answer would be written here
    await anyio.lowlevel.checkpoint()
    assert seen_while_forwarding == ["call.requested", "call.requested", "call.verdict"]
    assert answered == ["call.requested", "call.verdict"]
    assert store.events == ["call.requested", "call.verdict", "call.completed"]


async def test_a_store_that_cannot_record_them_is_logged_and_the_call_answered(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = Store()
    recorder = CallRecorder(store)  # type: ignore[arg-type]

    async def forward() -> dict[str, Any]:
        store.failing = True
        return {"content": []}

    with caplog.at_level(logging.ERROR, logger="bastion.proxy.recording"):
        result = await recorder.observe(await recorder.open(echo_request()), forward)
        await anyio.lowlevel.checkpoint()
    assert result == {"content": []}
    assert "audit store cannot record the end of" in caplog.text


async def test_a_flush_right_after_the_call_commits_its_ending(tmp_path: Path) -> None:
    store = SqliteAuditStore(tmp_path / "audit.db", durability="process")
    await store.open()
    try:
        recorder = CallRecorder(store)

        async def forward() -> dict[str, Any]:
            return {"content": []}

        await recorder.observe(await recorder.open(echo_request()), forward)
        await store.flush()  # no turn of the loop in between
        types = [row.row.type for row in store.rows(EventQuery(), newest_first=False)]
    finally:
        await store.close()
    assert types == ["call.requested", "call.completed"]


class Measuring(Store):
    """Keeps each `call.completed` (to read its `result_size`)."""

    def __init__(self) -> None:
        super().__init__()
        self.completed: list[CallCompleted] = []

    def record_nowait(self, event: AuditEvent) -> None:
        super().record_nowait(event)
        if isinstance(event, CallCompleted):
            self.completed.append(event)


async def test_the_result_is_measured_after_the_answer_and_as_compact_utf8_json(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = Measuring()
    recorder = CallRecorder(store)  # type: ignore[arg-type]
    measured: list[Any] = []
    size_of = recording._size_of

    def measure(result: Any) -> int:
        measured.append(result)
        return size_of(result)

    monkeypatch.setattr(recording, "_size_of", measure)
    result = {"content": [{"type": "text", "text": "héllo ✓"}], "isError": False}

    async def forward() -> dict[str, Any]:
        return result

    assert await recorder.observe(await recorder.open(echo_request()), forward) is result
    assert measured == []  # the answer is written here: measuring a large result would hold it
    await anyio.lowlevel.checkpoint()
    assert measured == [result]
    [completed] = store.completed
    assert completed.result_size == len(compact_json(result).encode("utf-8"))
    assert completed.result_size > len(compact_json(result))  # bytes, not characters

"""The async writer (PostgreSQL's) across event loops and threads: answered wherever the caller waits,
never left hanging when the loop it runs on is gone."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import anyio
import pytest

from bastion.audit.events import ToolChanged
from bastion.audit.query import EventQuery
from bastion.audit.store import AuditStore, AuditStoreError
from tests.unit.audit.conftest import Backend

pytestmark = pytest.mark.anyio


@pytest.fixture
def pg() -> Iterator[Backend]:
    from tests.unit.audit.postgres import postgres_backend

    with postgres_backend() as made:
        yield made


def changed(n: int) -> ToolChanged:
    return ToolChanged(server="git", tool=f"t{n}", old_digest="a", new_digest="b")


async def test_a_caller_on_another_event_loop_is_answered_there(pg: Backend) -> None:
    store = pg.make()
    await store.open()
    errors: list[BaseException] = []

    def other_loop() -> None:
        async def record_there() -> None:
            await store.record(changed(1))  # durable: its waiter lives on this other loop
            await store.flush()

        try:
            asyncio.run(record_there())
        except BaseException as exc:  # reported to the test below
            errors.append(exc)

    with anyio.fail_after(30):
        await anyio.to_thread.run_sync(other_loop)
    await store.record(changed(2))
    await store.close()

    assert errors == []
    assert store.count(EventQuery()) == 2


def test_a_store_whose_loop_has_ended_refuses_instead_of_hanging(pg: Backend) -> None:
    store: AuditStore = pg.make()
    opened = threading.Event()

    async def open_and_leave() -> None:  # the loop ends without close(): its writer task is cancelled
        await store.open()
        await store.record(changed(1))
        opened.set()

    asyncio.run(open_and_leave())

    assert opened.is_set()
    with pytest.raises(AuditStoreError, match="stopped"):
        store.record_nowait(changed(2))

    async def record_later() -> None:
        with anyio.fail_after(10):
            await store.record(changed(3))

    with pytest.raises(AuditStoreError, match="stopped"):
        asyncio.run(record_later())
    assert store.count(EventQuery()) == 1

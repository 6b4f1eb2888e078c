"""`RequestCancel`: one request's cancel scope in the task that serves it (`relay/request_cancel.py`)."""

from __future__ import annotations

import asyncio

import pytest

from bastion.relay.request_cancel import RequestCancel

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_a_cancelled_request_stops_at_its_await_and_the_scope_swallows_it() -> None:
    cancel = RequestCancel()
    started, cleaned_up = asyncio.Event(), asyncio.Event()
    ran_on = False

    async def serve() -> str:
        nonlocal ran_on
        with cancel:
            try:
                started.set()
                await asyncio.Event().wait()  # never set: only the cancellation ends it
            finally:
                await asyncio.sleep(0)  # a clean-up that awaits is not cancelled again
                cleaned_up.set()
            ran_on = True
        return "answered None"

    task = asyncio.get_running_loop().create_task(serve())
    await started.wait()
    cancel.cancel()
    assert await asyncio.wait_for(task, 5) == "answered None"
    assert cleaned_up.is_set()
    assert not ran_on
    assert task.cancelling() == 0  # taken back: the task is not left marked as being cancelled


@pytest.mark.parametrize("scope_too", [False, True], ids=["alone", "with-the-scope's"])
async def test_a_cancellation_from_outside_goes_on(scope_too: bool) -> None:
    cancel = RequestCancel()
    started = asyncio.Event()

    async def serve() -> None:
        with cancel:
            started.set()
            await asyncio.Event().wait()

    task = asyncio.get_running_loop().create_task(serve())
    await started.wait()
    if scope_too:
        cancel.cancel()
    task.cancel()  # the gateway stopping, say: not this scope's
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)


async def test_a_cancel_after_the_scope_is_left_does_nothing() -> None:
    cancel = RequestCancel()
    left, go_on = asyncio.Event(), asyncio.Event()

    async def serve() -> str:
        with cancel:
            await asyncio.sleep(0)
        left.set()
        await go_on.wait()  # e.g. the answer being written
        return "written"

    task = asyncio.get_running_loop().create_task(serve())
    await left.wait()
    cancel.cancel()
    go_on.set()
    assert await asyncio.wait_for(task, 5) == "written"


async def test_cancelled_before_it_is_entered_the_request_is_cancelled_at_its_first_await() -> None:
    cancel = RequestCancel()
    cancel.cancel()
    reached = False

    async def serve() -> str:
        nonlocal reached
        with cancel:
            await asyncio.sleep(0)
            reached = True
        return "cancelled"

    assert await asyncio.wait_for(asyncio.get_running_loop().create_task(serve()), 5) == "cancelled"
    assert not reached


async def test_a_request_that_ends_normally_is_untouched() -> None:
    cancel = RequestCancel()

    async def serve() -> int:
        with cancel:
            await asyncio.sleep(0)
            return 42

    assert await asyncio.wait_for(asyncio.get_running_loop().create_task(serve()), 5) == 42


def test_it_needs_a_task() -> None:
    with pytest.raises(RuntimeError), RequestCancel():  # no event loop, no task
        pass

"""The cancel scope of one agent request, served in the current asyncio task.

`notifications/cancelled` (and the end of the agent's session) cancels a request the relay
is serving: `RelaySession.cancel` finds its `RequestCancel` by id and calls `cancel`. The
scope then cancels the task serving it; the `CancelledError` raised in it comes out of the
request's flow (the upstream is told, the end recorded) and the scope swallows it, so the
front door knows the request was cancelled and answers accordingly (not at all, or with the
era's error). It is what `anyio.CancelScope` did here, for a fifth of the cost: the task
noted on the way in and an `uncancel` on the way out, where anyio's scope sets up and tears
down its per-task state (after 20 ms idle, 18 µs against 78 on every request, half of it
before the write-ahead record's sync starts: `benchmarks/bench_front_cold.py`).

Only a cancellation the scope itself asked for is swallowed: one from outside (the gateway
stopping, uvicorn cancelling the request's task) goes on, counted with `Task.uncancel` as
`asyncio.timeout` does. A `cancel` after the scope is left does nothing. It is
edge-triggered: the task is cancelled once, so a request's clean-up after the
`CancelledError` (telling the upstream) runs without being cancelled again.
"""

from __future__ import annotations

import asyncio
from types import TracebackType


class RequestCancel:
    """`with RequestCancel() as cancel:` around a request's serving, in the task that serves it."""

    __slots__ = ("_delivered", "_task", "cancel_called")

    def __init__(self) -> None:
        self._task: asyncio.Task[object] | None = None
        self._delivered = False
        """The task was cancelled by this scope (once)."""
        self.cancel_called = False

    def __enter__(self) -> RequestCancel:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("RequestCancel must be entered in an asyncio task")
        self._task = task
        if self.cancel_called:  # cancelled before it was entered
            self._deliver(task)
        return self

    def cancel(self) -> None:
        """Cancel the request (no-op once done, or if already cancelled)."""
        if self.cancel_called:
            return
        self.cancel_called = True
        if self._task is not None:
            self._deliver(self._task)

    def _deliver(self, task: asyncio.Task[object]) -> None:
        self._delivered = True
        task.cancel()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> bool:
        task, self._task = self._task, None
        if not self._delivered or task is None:
            return False
        # This scope's cancellation is taken back; another one (from outside) is left to go on.
        return task.uncancel() == 0 and exc_type is asyncio.CancelledError

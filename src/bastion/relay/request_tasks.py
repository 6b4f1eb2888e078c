"""The agent's requests being answered on a session (stdio), each a plain event-loop task.

An anyio task group's `start_soon` costs about ten times what `loop.create_task` does, on
every call; and in a task group a request task that fails unexpectedly ends every other
one and the session. Here a failure is logged and the session goes on; when the session
ends, what is still running is cancelled and waited for."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

import anyio

logger = logging.getLogger(__name__)


class RequestTasks:
    """The requests in flight on one session."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            logger.error("answering a request failed", exc_info=exc)

    async def cancel_all(self) -> None:
        """Cancel what is still running and wait until it has ended."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            with anyio.CancelScope(shield=True):
                await asyncio.wait(tasks)

"""The SDK's Streamable HTTP session manager for one server, kept running whatever one session does.

`StreamableHTTPSessionManager.run()` owns a task group in which the server task of every
stateful agent session runs. If an exception escapes any one of those tasks, that task group
fails: every session of the manager ends, `run()` exits (its task group is set to None, so
each later `handle_request` raises `RuntimeError("Task group is not initialized")`, an HTTP
500), and the failure cancels whichever task entered `run()`. Entered by the gateway's serving
task, one bad session would stop the front door for every agent.

So each manager runs in a task of its own (`run`): when its task group fails, the failure is
logged and a fresh manager takes its place (that server's agents open new sessions; other
servers are untouched). Requests that arrive while there is none are answered 503 with a
JSON-RPC error and Retry-After, never 500.

Under the relay the SDK's manager serves only what the relay hands it (2026-07-28 requests it
does not serve itself, or everything with `BASTION_RELAY=0`): the gateway gives each kept
manager its task group (`serve_in`) and the first request starts it, so an idle gateway has
not imported the SDK's server stack.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import anyio
import anyio.abc
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from bastion.mcp_names import INTERNAL_ERROR
from bastion.proxy.sdk_user import bind_sdk_user

if TYPE_CHECKING:
    from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

logger = logging.getLogger(__name__)


class KeptSessionManager:
    """A `StreamableHTTPSessionManager` from `factory`, replaced by a fresh one if its task group fails."""

    def __init__(self, name: str, factory: Callable[[], StreamableHTTPSessionManager]) -> None:
        self.name = name
        self._factory = factory
        self._manager: StreamableHTTPSessionManager | None = None
        self.replacements = 0
        self.next_start = anyio.Event()
        """Set when the next manager has started (a fresh event is armed each time)."""
        self._group: anyio.abc.TaskGroup | None = None
        self._first: anyio.Event | None = None

    @property
    def running(self) -> bool:
        return self._manager is not None

    @property
    def restarting(self) -> bool:
        """No manager to serve now, though one ran or should run (not: one waiting for its first request)."""
        return self._manager is None and (self._group is None or self._first is not None)

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Keep a manager running until cancelled. Started once the first one runs.

        A manager that fails before it ever ran (its `run()` could not be entered) raises:
        replacing it would only fail again.
        """
        started = False
        while True:
            manager = self._factory()
            try:
                async with manager.run():
                    self._manager = manager
                    self.next_start.set()
                    self.next_start = anyio.Event()
                    if not started:
                        started = True
                        task_status.started()
                    await anyio.sleep_forever()
            except Exception:
                if self._manager is not manager:
                    raise
                self.replacements += 1
                logger.exception(
                    "the Streamable HTTP session manager of server %r failed (its agents' sessions ended); "
                    "starting a fresh one",
                    self.name,
                )
            finally:
                self._manager = None

    def serve_in(self, group: anyio.abc.TaskGroup) -> None:
        """Run in `group`, from the first request on (`run` is then started by `handle_request`)."""
        self._group = group

    async def handle_request(self, scope: Scope, receive: Receive, send: Send) -> None:
        manager = self._manager
        if manager is None and self._group is not None:
            await self._start_once(self._group)
            manager = self._manager
        bind_sdk_user(scope)
        if manager is None:
            await _restarting(self.name)(scope, receive, send)
            return
        await manager.handle_request(scope, receive, send)

    async def _start_once(self, group: anyio.abc.TaskGroup) -> None:
        """Start `run` in `group` on the first request; a request arriving meanwhile waits for it."""
        first = self._first
        if first is not None:
            await first.wait()
            return
        self._first = first = anyio.Event()
        try:
            await group.start(self.run)
        finally:
            first.set()


def _restarting(name: str) -> JSONResponse:
    body = {
        "jsonrpc": "2.0",
        "id": None,
        "error": {"code": INTERNAL_ERROR, "message": f"Bastion: the endpoint of server {name!r} is restarting"},
    }
    return JSONResponse(body, status_code=503, headers={"Retry-After": "1"})

"""The supervisor: health-checks one stdio server and restarts it when it falls over.

Every `health.interval` seconds it sends a protocol-level `ping`; a server that does not
answer within `health.timeout` is killed (it hangs). A server that exits, is killed for
exceeding a limit or for hanging is restarted after an exponential backoff
(`restart.backoff`, doubling up to `restart.backoff_max`). More than `restart.max_restarts`
restarts within `restart.window` seconds is a crash loop: the supervisor gives up and the
server stays down (`crash-loop`) until Bastion restarts or an admin clears the hold
(`bastion servers restart NAME`, which calls `resume()`). While the server is held down,
requests to it fail at once with the reason.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Protocol

import anyio

from bastion.runtime.config import HealthConfig, RestartConfig
from bastion.runtime.events import RuntimeEventSink, ServerExited, ServerGaveUp, ServerRestarted, ServerStarted

__all__ = ["Supervised", "Supervisor"]

logger = logging.getLogger(__name__)


class Supervised(Protocol):
    """What the supervisor needs of an upstream (`bastion.upstream.upstream.Upstream`)."""

    name: str
    refusal: str | None
    refusal_state: str
    last_exit: tuple[str, int | None] | None
    last_error: str | None
    session_ended: anyio.Event
    released: anyio.Event

    @property
    def is_up(self) -> bool: ...

    async def ensure_started(self) -> object: ...

    async def ping(self, within: float) -> None: ...

    def kill(self, reason: str) -> bool: ...

    @property
    def sandboxed(self) -> bool: ...

    def limits_in_force(self) -> dict[str, str]: ...


class Supervisor:
    """Watches one server until cancelled. `restarts` and `last_exit_reason` feed `bastion servers`."""

    def __init__(
        self, upstream: Supervised, health: HealthConfig, restart: RestartConfig, sink: RuntimeEventSink
    ) -> None:
        self.upstream = upstream
        self.health = health
        self.restart = restart
        self.sink = sink
        self.restarts = 0
        self.last_exit_reason: str | None = None
        self.held = False
        """True once a crash loop made it give up: `run()` has returned and the server stays down."""
        self._failures: deque[float] = deque()

    def resume(self) -> None:
        """Clear a crash-loop hold: forget the failures; the next `run()` supervises it afresh."""
        self._failures.clear()
        self.held = False
        self.upstream.refusal = None
        self.upstream.refusal_state = "restarting"

    async def run(self) -> None:
        """Supervise until cancelled (or until a crash loop makes it give up)."""
        if self.upstream.is_up:
            self._started()
        while True:
            if self.upstream.is_up:
                await self._watch()
                reason, code = self.upstream.last_exit or (self.upstream.last_error or "connection closed", None)
                self.last_exit_reason = reason
                self.sink.emit(ServerExited(self.upstream.name, reason, code))
            else:
                self.last_exit_reason = self.upstream.last_error or self.last_exit_reason
            if not await self._restart():
                return

    async def _watch(self) -> None:
        """Return when the current session has ended (exited, or killed because it hung)."""
        ended = self.upstream.session_ended
        while not ended.is_set():
            with anyio.move_on_after(self.health.interval):
                await ended.wait()
            if ended.is_set():
                return
            try:
                await self.upstream.ping(self.health.timeout)
            except TimeoutError:
                reason = f"hung: no answer to ping within {self.health.timeout:g} s"
                logger.warning("server %s %s; killing it", self.upstream.name, reason)
                if not self.upstream.kill(reason):
                    logger.warning("server %s cannot be killed (not sandboxed); waiting for it", self.upstream.name)
                    continue
                await ended.wait()
            except Exception as exc:
                logger.debug("ping to %s failed: %s", self.upstream.name, exc)
                with anyio.move_on_after(self.health.timeout):
                    await ended.wait()

    async def _restart(self) -> bool:
        """Back off, then start the server again. False when the crash-loop limit is reached."""
        upstream = self.upstream
        while True:
            now = anyio.current_time()
            self._failures.append(now)
            while self._failures and now - self._failures[0] > self.restart.window:
                self._failures.popleft()
            if len(self._failures) > self.restart.max_restarts:
                upstream.refusal_state = "crash-loop"
                upstream.refusal = (
                    f"crash loop: {len(self._failures)} failures within {self.restart.window:g} s "
                    f"(last: {self.last_exit_reason}); not restarting it"
                )
                logger.error("server %s: %s", upstream.name, upstream.refusal)
                reason = self.last_exit_reason or ""
                self.held = True
                self.sink.emit(ServerGaveUp(upstream.name, self.restarts, self.restart.window, reason=reason))
                return False
            delay = min(self.restart.backoff * 2 ** (len(self._failures) - 1), self.restart.backoff_max)
            upstream.refusal_state = "restarting"
            upstream.released = anyio.Event()
            upstream.refusal = f"restarting in {delay:g} s after: {self.last_exit_reason}"
            await anyio.sleep(delay)
            upstream.refusal = None
            try:
                await upstream.ensure_started()
            except Exception as exc:
                self.last_exit_reason = f"restart failed: {exc}"
                continue
            finally:
                upstream.released.set()
            self.restarts += 1
            self.sink.emit(ServerRestarted(upstream.name, self.restarts, delay))
            self._started()
            return True

    def _started(self) -> None:
        limits = tuple(sorted(self.upstream.limits_in_force().items()))
        self.sink.emit(ServerStarted(self.upstream.name, sandboxed=self.upstream.sandboxed, limits=limits))

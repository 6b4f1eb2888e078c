"""The health check of an HTTP upstream, a server Bastion reaches but does not launch.

A launched server has its supervisor (`runtime/supervisor.py`), which can kill and restart
it. An HTTP upstream is another program's: Bastion can neither restart nor kill it, but it
can notice. Every `health.interval` seconds the watch pings the open session; a session
that does not answer within `health.timeout` is ended (its calls in flight fail at once,
not at their own timeout), and a session that has ended, or never opened, is opened again.
So `/readyz` and `bastion servers` say `down` within an interval of the server going away
and `up` within an interval of its return, without waiting for an agent's call to fail.

Each change the watch sees between two rounds is an event: `server.exited` (and the
`server_crashed` alert, "server NAME is down: why") when the server went down, and
`server.started` when it is back. A session that ended and was reopened by an agent's call
between two rounds is not one.
"""

from __future__ import annotations

import logging
from typing import Protocol

import anyio

from bastion.runtime.config import HealthConfig
from bastion.runtime.events import RuntimeEventSink, ServerExited, ServerStarted

__all__ = ["RemoteWatch"]

logger = logging.getLogger(__name__)


class Watched(Protocol):
    """What the watch needs of an upstream (`bastion.upstream.upstream.Upstream`)."""

    name: str
    last_error: str | None

    @property
    def is_up(self) -> bool: ...

    async def ensure_started(self) -> object: ...

    async def ping(self, within: float) -> None: ...

    def end_session(self, reason: str) -> bool: ...


class RemoteWatch:
    """Watches one HTTP upstream until cancelled."""

    def __init__(self, upstream: Watched, health: HealthConfig, sink: RuntimeEventSink) -> None:
        self.upstream = upstream
        self.health = health
        self.sink = sink
        self._was_up = upstream.is_up
        """What the last round saw (at first: what the gateway's start left)."""

    async def run(self) -> None:
        while True:
            await anyio.sleep(self.health.interval)
            await self.check()

    async def check(self) -> None:
        """One round: ping the open session (ending it if it fails), or open a new one; then
        tell the sink if the server went down or came back since the last round."""
        await self._probe()
        up = self.upstream.is_up
        if self._was_up and not up:
            reason = self.upstream.last_error or "connection closed"
            self.sink.emit(ServerExited(self.upstream.name, reason, None, remote=True))
        elif up and not self._was_up:
            self.sink.emit(ServerStarted(self.upstream.name, sandboxed=False))
        self._was_up = up

    async def _probe(self) -> None:
        upstream = self.upstream
        if not upstream.is_up:
            try:
                await upstream.ensure_started()
            except Exception as exc:  # still away: `bastion servers` shows the error; try next round
                logger.debug("upstream %s still unreachable: %s", upstream.name, exc)
            return
        try:
            await upstream.ping(self.health.timeout)
        except TimeoutError:
            reason = f"did not answer a health check within {self.health.timeout:g} s"
        except Exception as exc:
            reason = f"health check failed: {exc}"
        else:
            return
        if upstream.end_session(reason):
            logger.warning("upstream %s: %s; its session is ended", upstream.name, reason)

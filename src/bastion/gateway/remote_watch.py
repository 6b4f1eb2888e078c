"""The health check of an HTTP upstream, a server Bastion reaches but does not launch.

A launched server has its supervisor (`runtime/supervisor.py`), which can kill and restart
it. An HTTP upstream is another program's: Bastion can neither restart nor kill it, but it
can notice. Every `health.interval` seconds the watch pings the open session; a session
that does not answer within `health.timeout` is ended (its calls in flight fail at once,
not at their own timeout), and a session that has ended, or never opened, is opened again.
So `/readyz` and `bastion servers` say `down` within an interval of the server going away
and `up` within an interval of its return, without waiting for an agent's call to fail.
"""

from __future__ import annotations

import logging
from typing import Protocol

import anyio

from bastion.runtime.config import HealthConfig

__all__ = ["RemoteWatch"]

logger = logging.getLogger(__name__)


class Watched(Protocol):
    """What the watch needs of an upstream (`bastion.gateway.upstream.Upstream`)."""

    name: str

    @property
    def is_up(self) -> bool: ...

    async def ensure_started(self) -> object: ...

    async def ping(self, within: float) -> None: ...

    def end_session(self, reason: str) -> bool: ...


class RemoteWatch:
    """Watches one HTTP upstream until cancelled."""

    def __init__(self, upstream: Watched, health: HealthConfig) -> None:
        self.upstream = upstream
        self.health = health

    async def run(self) -> None:
        while True:
            await anyio.sleep(self.health.interval)
            await self.check()

    async def check(self) -> None:
        """One round: ping the open session (ending it if it fails), or open a new one."""
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

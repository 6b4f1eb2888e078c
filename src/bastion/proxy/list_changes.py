"""`notifications/*/list_changed` for the agents of the aggregate endpoints (`/mcp`, virtual servers).

Their lists are unions over servers: one changes when a server's list changes, and when a
server goes down (it drops out) or comes back. Notices are queued without waiting (the
upstream's session task tells us) and sent to every legacy-era agent session by `run`; a
burst of changes while a notice is pending costs one more notice at most, not one each.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import anyio

from bastion.proxy.aggregate import AggregateServer

logger = logging.getLogger(__name__)

TOOLS_CHANGED = "notifications/tools/list_changed"
_RELAYED = frozenset({TOOLS_CHANGED, "notifications/prompts/list_changed", "notifications/resources/list_changed"})


class ListChanges:
    """Queues list-changed notices and delivers them to the aggregate endpoints' agent sessions."""

    def __init__(self, servers: Sequence[AggregateServer]) -> None:
        self.servers = servers
        self._pending: set[str] = set()
        self._wake = anyio.Event()

    def availability(self, server: str, up: bool) -> None:
        """A server went down or came back: its tools left or rejoined the lists (`Upstream.on_availability`)."""
        self.changed(TOOLS_CHANGED)

    def changed(self, method: str) -> None:
        """An upstream said one of its lists changed: so did the unions that include it."""
        if method in _RELAYED:
            self._pending.add(method)
            self._wake.set()

    async def run(self) -> None:
        """Deliver pending notices until cancelled."""
        while True:
            await self._wake.wait()
            self._wake = anyio.Event()
            pending, self._pending = self._pending, set()
            for method in sorted(pending):
                for server in self.servers:
                    try:
                        await server.hub.broadcast(method, {})
                    except Exception as exc:  # one gone session must not stop the others' notices
                        logger.warning("%s: could not send %s: %s", server.endpoint, method, exc)

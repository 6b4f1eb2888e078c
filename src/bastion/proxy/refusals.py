"""Audit events for requests the front door turns away, coalesced under floods.

`request.refused` (an authenticated request refused before the guard) and `auth.failure`
(no valid credential, or one that does not reach the server) are recorded as they happen
when they are the first of their kind in the current minute; later ones that minute are
only counted, and recorded as one coalesced event (with the count) when the minute is over
(`flush`, run each minute by the gateway and at its stop). Kinds are keyed by a fixed
vocabulary of reasons (and, for `auth.failure`, the authenticated agent, if any), so a flood
of any size from strangers costs at most two rows per reason per minute.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from bastion.audit.events import AuditEvent, AuthFailed, RequestRefused

WINDOW_SECONDS = 60.0
MAX_PATH = 256
MAX_DETAIL = 300

Coalescible = RequestRefused | AuthFailed


@dataclass(slots=True)
class _Window:
    start: float
    counted: int = 0
    last: Coalescible | None = None


class RefusalRecorder:
    """Records refusals through `record` (the event bus's `emit`), at most two events per kind per minute."""

    def __init__(self, record: Callable[[AuditEvent], None], clock: Callable[[], float] = time.time) -> None:
        self._record = record
        self._clock = clock
        self._windows: dict[Hashable, _Window] = {}

    def refused(
        self,
        reason: str,
        status: int,
        *,
        agent: str | None = None,
        server: str | None = None,
        path: str = "",
        client: str | None = None,
        detail: str = "",
    ) -> None:
        """An authenticated request refused before the guard (`reason` from a fixed set)."""
        now = self._clock()
        event = RequestRefused(
            time=now,
            agent=agent,
            server=server,
            reason=reason,
            status=status,
            path=path[:MAX_PATH],
            client=client,
            detail=detail[:MAX_DETAIL],
        )
        self._offer(("request.refused", reason), event, now)

    def auth_failed(
        self, reason: str, status: int, *, agent: str | None, server: str | None, path: str, client: str | None
    ) -> None:
        """A request without a valid credential (401), or with one that does not reach the server (403)."""
        now = self._clock()
        event = AuthFailed(
            time=now, agent=agent, server=server, reason=reason, status=status, path=path[:MAX_PATH], client=client
        )
        self._offer(("auth.failure", status, reason, agent), event, now)

    def flush(self, *, everything: bool = False) -> None:
        """Record the counts of every minute that is over (`everything`: the current ones too)."""
        now = self._clock()
        current = now - now % WINDOW_SECONDS
        for key, window in list(self._windows.items()):
            if everything or window.start < current:
                self._close(window)
                del self._windows[key]

    def _offer(self, key: Hashable, event: Coalescible, now: float) -> None:
        start = now - now % WINDOW_SECONDS
        window = self._windows.get(key)
        if window is not None and window.start == start:
            window.counted += 1
            window.last = event
            return
        if window is not None:
            self._close(window)
        self._windows[key] = _Window(start)
        self._record(event)

    def _close(self, window: _Window) -> None:
        if window.counted == 0 or window.last is None:
            return
        summary = dataclasses.replace(
            window.last, time=self._clock(), count=window.counted, coalesced=True, window_start=window.start
        )
        self._record(summary)

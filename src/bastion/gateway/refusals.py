"""`request.refused` audit events for requests the front door turns away, coalesced under floods.

A refusal is recorded as it happens when it is the first for its reason in the current
minute; later ones that minute are only counted, and recorded as one coalesced event (with
the count) when the minute is over (`flush`, run each minute by the gateway and at its
stop). Reasons come from a fixed vocabulary, so a flood of any size costs at most two rows
per reason per minute.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from bastion.audit.events import AuditEvent, RequestRefused

WINDOW_SECONDS = 60.0
MAX_PATH = 256
MAX_DETAIL = 300


@dataclass(slots=True)
class _Window:
    start: float
    counted: int = 0
    last: RequestRefused | None = None


class RefusalRecorder:
    """Records refusals through `record` (the event bridge's), at most two events per reason per minute."""

    def __init__(self, record: Callable[[AuditEvent], None], clock: Callable[[], float] = time.time) -> None:
        self._record = record
        self._clock = clock
        self._windows: dict[str, _Window] = {}

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
        now = self._clock()
        start = now - now % WINDOW_SECONDS
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
        window = self._windows.get(reason)
        if window is not None and window.start == start:
            window.counted += 1
            window.last = event
            return
        if window is not None:
            self._close(reason, window)
        self._windows[reason] = _Window(start)
        self._record(event)

    def flush(self, *, everything: bool = False) -> None:
        """Record the counts of every minute that is over (`everything`: the current ones too)."""
        now = self._clock()
        current = now - now % WINDOW_SECONDS
        for reason, window in list(self._windows.items()):
            if everything or window.start < current:
                self._close(reason, window)
                del self._windows[reason]

    def _close(self, reason: str, window: _Window) -> None:
        last = window.last
        if window.counted == 0 or last is None:
            return
        self._record(
            RequestRefused(
                time=self._clock(),
                agent=last.agent,
                server=last.server,
                reason=reason,
                status=last.status,
                path=last.path,
                client=last.client,
                detail=last.detail,
                count=window.counted,
                coalesced=True,
                window_start=window.start,
            )
        )

"""What happens when a limit refuses a call: an audit event each time, an alert once per burst.

A burst is a run of refusals by one limit for one subject (an agent, an agent on a server,
everyone) with no gap longer than the limit's own window: an agent hammering a
`60/minute` limit for an hour raises one `rate_limit_tripped` alert, not thousands.
"""

from __future__ import annotations

import datetime
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from bastion.alerts.model import Alert, AlertEmitter, AlertKind
from bastion.audit.events import AuditEvent, RateLimited, RateLimitStorageFailing, RateLimitStorageRecovered
from bastion.model import ToolCall

logger = logging.getLogger(__name__)

_PRUNE_EVERY = 1024


@dataclass(frozen=True, slots=True)
class Refusal:
    """A call a limit refused. `limit` names it as configured (`per_agent 60/minute`)."""

    limit: str
    subject: str
    """Whose counter: `agent 'bot'`, `agent 'bot' on server 'git'`, `all agents`, `server 'git'`."""
    message: str
    """What the agent is told."""
    retry_after: float | None
    """Seconds until a call would pass (None: when another call finishes)."""
    burst_gap: float
    """Refusals closer together than this belong to one burst."""


@dataclass
class _Burst:
    started: float
    last: float
    gap: float


class LimitReporter:
    """Records each refusal in the audit log and raises `rate_limit_tripped` once per burst.

    Also the `CountersHealth` of the rate-limit storage: its failure and recovery are recorded
    and alerted once each.
    """

    def __init__(
        self,
        record: Callable[[AuditEvent], None] | None = None,
        alerts: AlertEmitter | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.record = record
        self.alerts = alerts
        self._clock = clock
        self._bursts: dict[tuple[str, str], _Burst] = {}
        self._since_prune = 0
        self.bursts_alerted = 0

    def refused(self, call: ToolCall, refusal: Refusal) -> None:
        """A tool call refused (or its result withheld) by a limit."""
        self._refused(refusal, call.principal.agent, call.server, call.tool, call.call_id)

    def refused_request(self, agent: str, server: str, refusal: Refusal) -> None:
        """An HTTP request refused at the front door by `requests_per_agent`."""
        self._refused(refusal, agent, server, None, None)

    def _refused(self, refusal: Refusal, agent: str, server: str, tool: str | None, correlation_id: str | None) -> None:
        self._record(
            RateLimited(
                agent=agent,
                server=server,
                correlation_id=correlation_id,
                tool=tool,
                limit=refusal.limit,
                retry_after_s=refusal.retry_after,
            )
        )
        now = self._clock()
        key = (refusal.limit, refusal.subject)
        burst = self._bursts.get(key)
        if burst is not None and now - burst.last <= burst.gap:
            burst.last = now
            return
        self._bursts[key] = _Burst(now, now, refusal.burst_gap)
        self._prune(now)
        self.bursts_alerted += 1
        started = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        details = {
            "limit": refusal.limit,
            "subject": refusal.subject,
            "agent": agent,
            "server": server,
            "tool": tool,
            "retry_after_s": refusal.retry_after,
            "burst_started": started,
        }
        target = f"{server}/{tool}" if tool is not None else server
        summary = f"{refusal.subject} tripped the {refusal.limit} limit (calling {target})"
        self._alert(Alert(AlertKind.RATE_LIMIT_TRIPPED, summary, details))

    def storage_failing(self, storage: str, error: str) -> None:
        self._record(RateLimitStorageFailing(storage=storage, error=error))
        summary = f"rate-limit storage {storage} cannot be reached: {error}"
        self._alert(Alert(AlertKind.RATE_LIMIT_STORAGE_FAILING, summary, {"storage": storage, "error": error}))

    def storage_recovered(self, storage: str, down_for: float) -> None:
        self._record(RateLimitStorageRecovered(storage=storage, down_for_s=round(down_for, 3)))
        summary = f"rate-limit storage {storage} works again (down {down_for:.0f} s)"
        details = {"storage": storage, "down_for_s": round(down_for, 3)}
        self._alert(Alert(AlertKind.RATE_LIMIT_STORAGE_RECOVERED, summary, details))

    def _prune(self, now: float) -> None:
        self._since_prune += 1
        if self._since_prune < _PRUNE_EVERY:
            return
        self._since_prune = 0
        self._bursts = {k: b for k, b in self._bursts.items() if now - b.last <= b.gap}

    def _record(self, event: AuditEvent) -> None:
        if self.record is None:
            return
        try:
            self.record(event)
        except Exception:  # the event bus reports its own failures; this must not break the check
            logger.exception("could not record %s", event.type)

    def _alert(self, alert: Alert) -> None:
        if self.alerts is not None:
            self.alerts.emit(alert)

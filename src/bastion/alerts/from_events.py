"""The alerts the event bus's events raise: a subscriber of the bus.

Changed or held tool definitions (`tool_definition_changed`), blocked egress
(`egress_blocked`), servers that exit, go down or are given up on (`server_crashed`), or
restart (`server_restarted`), and an audit store that cannot write (`audit_store_failing`).
The approval gate, the guard pipeline, rate limits and result checks raise theirs where
they decide (see docs/alerts.md).
"""

from __future__ import annotations

from bastion.alerts.model import Alert, AlertEmitter, AlertKind
from bastion.audit import events as audit


class EventAlerts:
    """An `EventSubscriber` that raises, through `alerts`, the alert each event calls for."""

    observes_unrecorded = True
    """An event the audit store could not take still raises its alert."""

    def __init__(self, alerts: AlertEmitter) -> None:
        self.alerts = alerts

    def observe(self, event: audit.AuditEvent) -> None:
        if type(event) not in _RAISING:  # most events (calls, verdicts) raise none: skip the match
            return
        alert = alert_for(event)
        if alert is not None:
            self.alerts.emit(alert)

    def observe_write(self, seconds: float) -> None:
        pass

    def store_failing(self, where: str) -> None:
        """`audit_store_failing`. Details are the store only, so a run of failures coalesces into one alert."""
        self.alerts.emit(Alert(AlertKind.AUDIT_STORE_FAILING, f"audit store {where} cannot write", {"store": where}))


_RAISING = frozenset(
    {
        audit.ToolChanged,
        audit.ToolHeld,
        audit.EgressBlocked,
        audit.ServerExited,
        audit.ServerGaveUp,
        audit.ServerRestarted,
    }
)
"""The event kinds `alert_for` raises an alert for."""


def alert_for(event: audit.AuditEvent) -> Alert | None:
    """The alert `event` raises, or None."""
    match event:
        case audit.ToolChanged():
            return _tool_alert(event.server, event.tool, "changed", event.new_digest, event.old_digest, event.changes)
        case audit.ToolHeld():
            return _tool_alert(event.server, event.tool, "held", event.digest, None, event.findings)
        case audit.EgressBlocked():
            return egress_alert(event)
        case audit.ServerExited():
            details: dict[str, object] = {"server": event.server, "reason": event.reason, "exit_code": event.exit_code}
            went = "is down" if event.remote else "exited"
            return Alert(AlertKind.SERVER_CRASHED, f"server {event.server} {went}: {event.reason}", details)
        case audit.ServerGaveUp():
            details = {
                "server": event.server,
                "restarts": event.restarts,
                "window_seconds": event.window_seconds,
                "reason": event.reason,
            }
            summary = (
                f"server {event.server} crashed {event.restarts} times within {event.window_seconds:g} s; "
                "it is no longer restarted" + (f" (last: {event.reason})" if event.reason else "")
            )
            return Alert(AlertKind.SERVER_CRASHED, summary, details)
        case audit.ServerRestarted():
            details = {"server": event.server, "attempt": event.attempt}
            return Alert(
                AlertKind.SERVER_RESTARTED, f"server {event.server} restarted (attempt {event.attempt})", details
            )
    return None


def _tool_alert(
    server: str | None, tool: str, state: str, digest: str, previous: str | None, detail: tuple[str, ...]
) -> Alert:
    """`tool_definition_changed` for a tool changed since it was pinned, or held for review."""
    what = "changed since it was pinned" if state == "changed" else "is held for review"
    details = {
        "server": server,
        "tool": tool,
        "state": state,
        "digest": digest,
        "previous_digest": previous,
        "detail": list(detail),
    }
    summary = f"tool {server}/{tool} {what}: bastion tools show {server} {tool}"
    return Alert(AlertKind.TOOL_DEFINITION_CHANGED, summary, details)


def egress_alert(event: audit.EgressBlocked) -> Alert:
    """`egress_blocked`, naming the agent, server and tool of the call that tried (or each, when several)."""
    calls = list(event.in_flight)
    details: dict[str, object] = {
        "server": event.server,
        "agent": event.agent,
        "tool": event.tool,
        "correlation_id": event.correlation_id,
        "host": event.host,
        "port": event.port,
        "reason": event.reason,
        "ambiguous": event.ambiguous,
        "calls": calls,
    }
    if not calls:
        by = "with no call in flight"
    elif len(calls) == 1:
        by = f"during {calls[0]['agent']}'s call of {calls[0]['tool'] or 'a request'}"
    else:
        named = ", ".join(f"{c['agent']}: {c['tool']}" for c in calls)
        by = f"during one of {len(calls)} calls in flight ({named})"
    summary = f"server {event.server} tried to reach {event.host}:{event.port} {by}: blocked ({event.reason})"
    return Alert(AlertKind.EGRESS_BLOCKED, summary, details)

"""Every room's events into the audit log, and the alerts they raise.

The approval gate, tool pinning and the sandbox runtime each emit their own events through
a small sink protocol. `EventBridge` hands each room a sink that translates its events into
audit events (`bastion.audit.events`), raises the alerts an operator must hear about, and
still forwards every event to the room's own sink (a log line by default, a test's
recorder otherwise).

Recording never blocks the caller: events are queued for the audit writer's next group
commit. When the store cannot take one, the failure is logged and raises the
`audit_store_failing` alert (coalesced by the dispatcher); the caller carries on, as the
sink protocols require.
"""

from __future__ import annotations

import logging
import time
from urllib.parse import urlsplit

from bastion.alerts.model import Alert, AlertEmitter, AlertKind
from bastion.approvals import events as approval_events
from bastion.approvals.events import EventSink
from bastion.audit import events as audit
from bastion.audit.store import AuditStore, AuditStoreError
from bastion.gateway.in_flight import Attribution, InFlightCalls
from bastion.guard.pinning.events import PinEvent, PinEventSink
from bastion.runtime import events as runtime

logger = logging.getLogger(__name__)


class EventBridge:
    """Owns the translation; `alerts` is set once the dispatcher exists (it records through us too)."""

    def __init__(self, store: AuditStore, alerts: AlertEmitter | None = None) -> None:
        self.store = store
        self.alerts = alerts

    def record(self, event: audit.AuditEvent) -> None:
        """Queue `event` for the audit log; a store that cannot take it raises `audit_store_failing`."""
        try:
            self.store.record_nowait(event)
        except AuditStoreError as exc:
            logger.error("audit store cannot record %s: %s", event.type, exc)
            self.audit_failed(exc)

    def alert(self, alert: Alert) -> None:
        if self.alerts is not None:
            self.alerts.emit(alert)

    def audit_failed(self, error: BaseException) -> None:
        """Raise `audit_store_failing`. Details are the store only, so a run of failures coalesces into one alert."""
        where = self.store.description
        self.alert(Alert(AlertKind.AUDIT_STORE_FAILING, f"audit store {where} cannot write", {"store": where}))

    def approval_sink(self, forward: EventSink) -> ApprovalAuditSink:
        return ApprovalAuditSink(self, forward)

    def pin_sink(self, forward: PinEventSink) -> PinAuditSink:
        return PinAuditSink(self, forward)

    def runtime_sink(
        self, forward: runtime.RuntimeEventSink, in_flight: InFlightCalls | None = None
    ) -> RuntimeAuditSink:
        return RuntimeAuditSink(self, forward, in_flight)


class ApprovalAuditSink:
    """An approvals `EventSink`: approval events into the audit log, then to `forward`."""

    def __init__(self, bridge: EventBridge, forward: EventSink) -> None:
        self.bridge = bridge
        self.forward = forward

    def record(self, event: object) -> None:
        translated = approval_audit_event(event)
        if translated is not None:
            self.bridge.record(translated)
        self.forward.record(event)


def approval_audit_event(event: object) -> audit.AuditEvent | None:
    """The audit event for an approvals event (None for a kind the log does not keep)."""
    match event:
        case approval_events.ApprovalRequested(approval=a, call_id=call_id):
            return audit.ApprovalRequested(
                time=a.created_at,
                agent=a.agent,
                server=a.server,
                correlation_id=call_id,
                approval_id=a.id,
                tool=a.tool,
                reason=a.reason,
                rule=a.rule,
            )
        case approval_events.ApprovalDecided(approval=a, via=via):
            return audit.ApprovalDecided(
                time=a.decided_at if a.decided_at is not None else time.time(),
                agent=a.agent,
                server=a.server,
                approval_id=a.id,
                verdict="allow" if a.state.value == "approved" else "deny",
                decided_by=a.decided_by or "",
                tool=a.tool,
                reason=a.decision_reason or "",
                always=a.always,
                via=via,
            )
        case approval_events.ApprovalExpired(approval=a):
            return audit.ApprovalExpired(agent=a.agent, server=a.server, approval_id=a.id, tool=a.tool)
        case approval_events.ApprovalUsed(approval=a, call_id=call_id):
            return audit.ApprovalUsed(
                agent=a.agent,
                server=a.server,
                correlation_id=call_id,
                approval_id=a.id,
                tool=a.tool,
                decided_by=a.decided_by or "",
            )
        case approval_events.AllowRuleApplied(rule=r, call_id=call_id):
            return audit.ApprovalUsed(
                agent=r.agent,
                server=r.server,
                correlation_id=call_id,
                approval_id=r.approval_id,
                tool=r.tool,
                decided_by=r.created_by,
                allow_rule_id=r.id,
            )
        case approval_events.AlertDeliveryFailed(url=url, kind=kind, attempts=attempts, error=error):
            return audit.AlertFailed(kind=kind, webhook=_origin(url), attempts=attempts, error=error)
    return None


def _origin(url: str) -> str:
    """`scheme://host[:port]` of a webhook URL: its path and query may hold a secret (Slack's do)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}" + (f":{parts.port}" if parts.port else "")


class PinAuditSink:
    """A `PinEventSink`: pin events into the audit log, `tool_definition_changed` alerts, then `forward`."""

    def __init__(self, bridge: EventBridge, forward: PinEventSink) -> None:
        self.bridge = bridge
        self.forward = forward

    async def emit(self, event: PinEvent) -> None:
        translated = pin_audit_event(event)
        if translated is not None:
            self.bridge.record(translated)
        alert = pin_alert(event)
        if alert is not None:
            self.bridge.alert(alert)
        await self.forward.emit(event)


def pin_audit_event(event: PinEvent) -> audit.AuditEvent | None:
    """The audit event for a pin event."""
    at, server, tool, digest = event.time, event.server, event.tool, event.hash
    match event.kind:
        case "pinned":
            return audit.ToolPinned(time=at, server=server, tool=tool, digest=digest or "")
        case "changed":
            old = event.previous_hash or ""
            return audit.ToolChanged(time=at, server=server, tool=tool, old_digest=old, new_digest=digest or "")
        case "held":
            return audit.ToolHeld(time=at, server=server, tool=tool, digest=digest or "", findings=event.detail)
        case "accepted":
            return audit.ToolAccepted(
                time=at,
                server=server,
                tool=tool,
                digest=digest or "",
                accepted_by=event.actor or "",
                previous_digest=event.previous_hash,
            )
        case "removed":
            return audit.ToolRemoved(time=at, server=server, tool=tool, digest=digest)
        case "restored":
            return audit.ToolRestored(time=at, server=server, tool=tool, digest=digest)
    return None


def pin_alert(event: PinEvent) -> Alert | None:
    """`tool_definition_changed` for a changed tool or one held for review; None otherwise."""
    if event.kind not in ("changed", "held"):
        return None
    what = "changed since it was pinned" if event.kind == "changed" else "is held for review"
    details = {
        "server": event.server,
        "tool": event.tool,
        "state": event.kind,
        "digest": event.hash,
        "previous_digest": event.previous_hash,
        "detail": list(event.detail),
    }
    summary = f"tool {event.server}/{event.tool} {what}: bastion tools show {event.server} {event.tool}"
    return Alert(AlertKind.TOOL_DEFINITION_CHANGED, summary, details)


class RuntimeAuditSink:
    """A `RuntimeEventSink`: egress and lifecycle events into the audit log, their alerts, then `forward`.

    A blocked connection is tied to the calls in flight on its server (`in_flight`).
    """

    def __init__(
        self, bridge: EventBridge, forward: runtime.RuntimeEventSink, in_flight: InFlightCalls | None = None
    ) -> None:
        self.bridge = bridge
        self.forward = forward
        self.in_flight = in_flight

    def emit(self, event: runtime.RuntimeEvent) -> None:
        try:
            during = None
            if isinstance(event, runtime.EgressBlocked) and self.in_flight is not None:
                during = self.in_flight.attribute(event.server, f"{event.host}:{event.port}")
            self.bridge.record(runtime_audit_event(event, during))
            alert = runtime_alert(event, during)
            if alert is not None:
                self.bridge.alert(alert)
        except Exception:  # the protocol: emit never raises
            logger.exception("could not record runtime event %r", event)
        self.forward.emit(event)


def runtime_audit_event(event: runtime.RuntimeEvent, during: Attribution | None = None) -> audit.AuditEvent:
    """The audit event for a runtime event; `during`: the calls in flight when it happened."""
    match event:
        case runtime.EgressAllowed():
            return audit.EgressAllowed(
                time=event.at,
                server=event.server,
                host=event.host,
                port=event.port,
                method=event.method,
                address=event.address,
                bytes_out=event.bytes_out,
                bytes_in=event.bytes_in,
            )
        case runtime.EgressBlocked():
            calls = during.calls if during is not None else ()
            only = during.only if during is not None else None
            return audit.EgressBlocked(
                time=event.at,
                server=event.server,
                agent=during.agent if during is not None else None,
                correlation_id=only.call_id if only is not None else None,
                host=event.host,
                port=event.port,
                method=event.method,
                reason=event.reason,
                tool=during.tool if during is not None else None,
                ambiguous=len(calls) > 1,
                calls=[call.as_dict() for call in calls] if len(calls) > 1 else None,
            )
        case runtime.ServerStarted():
            return audit.ServerStarted(
                time=event.at, server=event.server, sandboxed=event.sandboxed, limits=dict(event.limits)
            )
        case runtime.ServerExited():
            return audit.ServerExited(
                time=event.at, server=event.server, exit_code=event.exit_code, reason=event.reason
            )
        case runtime.ServerRestarted():
            return audit.ServerRestarted(
                time=event.at,
                server=event.server,
                attempt=event.attempt,
                reason=f"restarted {event.after_seconds:g} s after it exited",
            )
        case runtime.ServerGaveUp():
            return audit.ServerGaveUp(
                time=event.at,
                server=event.server,
                restarts=event.restarts,
                window_seconds=event.window_seconds,
                reason=event.reason,
            )
        case runtime.SandboxDisabled():
            return audit.SandboxDisabled(time=event.at, server=event.server)


def runtime_alert(event: runtime.RuntimeEvent, during: Attribution | None = None) -> Alert | None:
    """`egress_blocked`, `server_crashed` (an exit, or giving up) or `server_restarted`; None otherwise."""
    match event:
        case runtime.EgressBlocked():
            return egress_alert(event, during if during is not None else Attribution(()))
        case runtime.ServerExited():
            details: dict[str, object] = {"server": event.server, "reason": event.reason, "exit_code": event.exit_code}
            went = "is down" if event.remote else "exited"
            return Alert(AlertKind.SERVER_CRASHED, f"server {event.server} {went}: {event.reason}", details)
        case runtime.ServerGaveUp():
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
        case runtime.ServerRestarted():
            details = {"server": event.server, "attempt": event.attempt}
            return Alert(
                AlertKind.SERVER_RESTARTED, f"server {event.server} restarted (attempt {event.attempt})", details
            )
    return None


def egress_alert(event: runtime.EgressBlocked, during: Attribution) -> Alert:
    """`egress_blocked`, naming the agent, server and tool of the call that tried (or each, when several)."""
    calls = [call.as_dict() for call in during.calls]
    details: dict[str, object] = {
        "server": event.server,
        "agent": during.agent,
        "tool": during.tool,
        "correlation_id": during.only.call_id if during.only is not None else None,
        "host": event.host,
        "port": event.port,
        "reason": event.reason,
        "ambiguous": during.ambiguous,
        "calls": calls,
    }
    if not calls:
        by = "with no call in flight"
    elif during.only is not None:
        by = f"during {during.only.agent}'s call of {during.only.tool or 'a request'}"
    else:
        named = ", ".join(f"{c['agent']}: {c['tool']}" for c in calls)
        by = f"during one of {len(calls)} calls in flight ({named})"
    summary = f"server {event.server} tried to reach {event.host}:{event.port} {by}: blocked ({event.reason})"
    return Alert(AlertKind.EGRESS_BLOCKED, summary, details)

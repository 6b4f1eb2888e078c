"""The approval room's events as audit events, and the sink that reports them on the event bus."""

from __future__ import annotations

import time

from bastion.approvals import events as approval_events
from bastion.approvals.events import EventSink
from bastion.audit import events as audit
from bastion.audit.bus import EventSink as Bus


class AuditedApprovalEvents:
    """An approvals `EventSink`: each event onto the bus as its audit kind, then to `forward` (a log line)."""

    def __init__(self, bus: Bus, forward: EventSink) -> None:
        self.bus = bus
        self.forward = forward

    def record(self, event: object) -> None:
        translated = approval_audit_event(event)
        if translated is not None:
            self.bus.emit(translated)
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
    return None

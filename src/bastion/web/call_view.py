"""One call as a person reads it: who, what, when, the verdict and why, the approval, what it returned.

Built from the call's audit events (those sharing its `correlation_id`) plus what belongs to
it without carrying that id: the decision on its approval (`approval.decided` names the
approval, not the call), egress blocks of its server while it ran, and the alerts raised
about it while it ran (alerts are kept in memory only, so an old call shows none).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bastion.alerts.model import Alert, AlertKind
from bastion.audit.events import StoredEvent
from bastion.audit.subject import subject
from bastion.web.chain import CausedView, SourceView
from bastion.web.tree import mask

ALERT_SLACK_SECONDS = 2.0
"""An alert about a call may be raised just after its last event is written."""
CALL_ALERTS = frozenset(
    {AlertKind.CALL_DENIED, AlertKind.APPROVAL_REQUESTED, AlertKind.RATE_LIMIT_TRIPPED, AlertKind.EGRESS_BLOCKED}
)


@dataclass(frozen=True, slots=True)
class ApprovalView:
    """The call was held: what asked, and what a person (or the clock) decided."""

    approval_id: str
    asked_at: float
    rule: str
    reason: str
    decision: str = "pending"
    """`approved`, `denied`, `expired` or `pending`."""
    decided_by: str = ""
    decided_at: float | None = None
    decision_reason: str = ""
    via: str = ""
    always: bool = False


@dataclass(frozen=True, slots=True)
class CallView:
    """What the call page shows. `status` is one word for the headline and its colour."""

    call_id: str
    agent: str | None
    server: str | None
    what: str | None
    method: str | None
    transport: str
    endpoint: str
    """`aggregate` or `virtual:<name>` for a call through `/mcp` or a virtual server; empty otherwise."""
    requested_at: float | None
    completed_at: float | None
    status: str
    verdict: str | None
    rule: str | None
    reason: str
    outcome: str | None
    error: str | None
    is_error: bool | None
    latency_ms: float | None
    result_size: int | None
    arguments: Any
    result: Any
    has_arguments: bool
    has_result: bool
    flagged: bool
    approval: ApprovalView | None
    egress_blocks: list[StoredEvent] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    source: SourceView | None = None
    """Provenance held or denied the call: the result its argument value came from (web/chain.py)."""
    caused: list[CausedView] = field(default_factory=list)
    """The later calls provenance held or denied because of this call's result."""

    @property
    def window(self) -> tuple[float, float] | None:
        """From the request to its completion (or now, for a call still running): what ran during the call."""
        if self.requested_at is None:
            return None
        return self.requested_at, self.completed_at if self.completed_at is not None else self.requested_at


def _first(events: Sequence[StoredEvent], kind: str) -> StoredEvent | None:
    return next((e for e in events if e.type == kind), None)


def _last(events: Sequence[StoredEvent], kind: str) -> StoredEvent | None:
    return next((e for e in reversed(events) if e.type == kind), None)


def _str(details: dict[str, Any], key: str) -> str:
    value = details.get(key)
    return value if isinstance(value, str) else ""


def approval_of(events: Sequence[StoredEvent], decisions: Iterable[StoredEvent]) -> ApprovalView | None:
    """The approval the call waited on, with its decision from `decisions` (`approval.decided` events)."""
    asked = _first(events, "approval.requested")
    if asked is None:
        return None
    approval_id = _str(asked.details, "approval_id")
    view = ApprovalView(approval_id, asked.time, _str(asked.details, "rule"), _str(asked.details, "reason"))
    decided = next((d for d in decisions if d.details.get("approval_id") == approval_id), None)
    if decided is not None:
        return ApprovalView(
            approval_id,
            asked.time,
            view.rule,
            view.reason,
            decision="approved" if decided.details.get("verdict") == "allow" else "denied",
            decided_by=_str(decided.details, "decided_by"),
            decided_at=decided.time,
            decision_reason=_str(decided.details, "reason"),
            via=_str(decided.details, "via"),
            always=bool(decided.details.get("always")),
        )
    expired = _first(events, "approval.expired")
    if expired is not None:
        return ApprovalView(
            approval_id, asked.time, view.rule, view.reason, decision="expired", decided_at=expired.time
        )
    return view


def _status(outcome: str | None, verdict: str | None, approval: ApprovalView | None) -> str:
    if outcome is None:
        return "held" if approval is not None and approval.decision == "pending" else "running"
    if outcome == "allowed":
        return "approved" if approval is not None and approval.decision == "approved" else "allowed"
    if outcome == "denied":
        return "held" if verdict == "ask" and approval is not None and approval.decision == "pending" else "denied"
    return "error"


def call_view(
    events: Sequence[StoredEvent],
    *,
    decisions: Iterable[StoredEvent] = (),
    egress: Iterable[StoredEvent] = (),
    alerts: Iterable[Alert] = (),
) -> CallView:
    """The view of one call from its events (oldest first), and what belongs to it from elsewhere.

    Every detail is masked first: only payloads are redacted when stored, and a reason or
    an error may quote a credential too.
    """
    events = [_masked(e) for e in events]
    decisions = [_masked(e) for e in decisions]
    egress = [_masked(e) for e in egress]
    alerts = [dataclasses.replace(a, summary=mask(a.summary), details=mask(dict(a.details))) for a in alerts]
    requested = _first(events, "call.requested")
    verdict = _last(events, "call.verdict")
    completed = _last(events, "call.completed")
    anchor = requested or verdict or completed or events[0]
    facts: dict[str, Any] = {}
    for event in (requested, verdict, completed):
        if event is not None:
            facts |= {key: value for key, value in event.details.items() if value not in (None, "")}
    approval = approval_of(events, decisions)
    outcome = _str(completed.details, "outcome") or None if completed is not None else None
    decided = _str(verdict.details, "verdict") or None if verdict is not None else None
    latency = completed.details.get("latency_ms") if completed is not None else None
    result_size = completed.details.get("result_size") if completed is not None else None
    is_error = completed.details.get("is_error") if completed is not None else None
    view = CallView(
        call_id=anchor.correlation_id or str(anchor.seq),
        agent=anchor.agent,
        server=anchor.server,
        what=subject(anchor.type, facts),
        method=facts.get("method") if isinstance(facts.get("method"), str) else None,
        transport=_str(facts, "transport"),
        endpoint=_str(facts, "endpoint"),
        requested_at=requested.time if requested is not None else anchor.time,
        completed_at=completed.time if completed is not None else None,
        status=_status(outcome, decided, approval),
        verdict=decided,
        rule=_str(facts, "rule") or None,
        reason=(_str(verdict.details, "reason") if verdict is not None else "") or _str(facts, "error"),
        outcome=outcome,
        error=_str(completed.details, "error") or None if completed is not None else None,
        is_error=is_error if isinstance(is_error, bool) else None,
        latency_ms=float(latency) if isinstance(latency, int | float) else None,
        result_size=result_size if isinstance(result_size, int) else None,
        arguments=requested.details.get("arguments") if requested is not None else None,
        result=completed.details.get("result") if completed is not None else None,
        has_arguments=requested is not None and requested.details.get("arguments") is not None,
        has_result=completed is not None and completed.details.get("result") is not None,
        flagged=bool(facts.get("log")),
        approval=approval,
    )
    blocks = [e for e in events if e.type == "egress.blocked"]
    window = view.window
    if window is not None:
        seen = {e.seq for e in blocks}
        blocks += [e for e in egress if e.seq not in seen and e.server == view.server and _during(e.time, window, 0)]
    view.egress_blocks.extend(sorted(blocks, key=lambda e: e.seq))
    view.alerts.extend(a for a in alerts if _about(a, view))
    return view


def _masked(event: StoredEvent) -> StoredEvent:
    return dataclasses.replace(event, details=mask(event.details))


def _during(t: float, window: tuple[float, float], slack: float) -> bool:
    return window[0] <= t <= window[1] + slack


def _about(alert: Alert, view: CallView) -> bool:
    """Names the call's approval; or was raised while the call ran, about its server (egress) or its refusal."""
    details = alert.details
    approval_id = details.get("approval_id")
    if approval_id is not None:  # an approval's alerts name it: no guessing by time
        return view.approval is not None and approval_id == view.approval.approval_id
    window = view.window
    if alert.kind not in CALL_ALERTS or window is None or not _during(alert.time, window, ALERT_SLACK_SECONDS):
        return False
    if details.get("server") != view.server:
        return False
    if alert.kind is AlertKind.EGRESS_BLOCKED:
        return _during(alert.time, window, 0)
    if view.outcome != "denied" or details.get("agent") != view.agent or details.get("tool") != view.what:
        return False
    if alert.kind is AlertKind.CALL_DENIED:  # it names the check and reason: the very refusal of this call
        return details.get("check") == view.rule and details.get("reason") == view.reason
    return True

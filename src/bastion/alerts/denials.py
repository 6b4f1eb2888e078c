"""The `call denied` alert, raised by the guard pipeline's denial listener."""

from __future__ import annotations

from bastion.alerts.model import Alert, AlertEmitter, AlertKind
from bastion.approvals.gate import CHECK_NAME as APPROVAL_CHECK
from bastion.guard.pipeline import DenialListener
from bastion.guard.ratelimit.check import CHECK_NAME as RATE_LIMIT_CHECK
from bastion.model import ToolCall, Verdict


def call_denied_alerts(alerts: AlertEmitter) -> DenialListener:
    """A listener that alerts on each denied call.

    Calls refused by the approval stage are left out: a held call raises `approval_requested`
    instead, and one a person denied needs no one else told. So are calls refused by a
    limit: the rate-limit check raises `rate_limit_tripped` once per burst instead.
    """

    def on_deny(call: ToolCall, verdict: Verdict) -> None:
        if verdict.check in (APPROVAL_CHECK, RATE_LIMIT_CHECK):
            return
        details = {
            "agent": call.principal.agent,
            "server": call.server,
            "tool": call.tool,
            "check": verdict.check,
            "reason": verdict.reason,
        }
        summary = f"denied {call.principal.agent} -> {call.server}/{call.tool}: {verdict.reason}"
        alerts.emit(Alert(AlertKind.CALL_DENIED, summary, details))

    return on_deny

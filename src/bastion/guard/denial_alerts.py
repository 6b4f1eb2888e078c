"""The `call_denied` and `call_flagged` alerts, raised by the guard pipeline's verdict listeners."""

from __future__ import annotations

from typing import Literal

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
        alerts.emit(_verdict_alert(AlertKind.CALL_DENIED, "denied", call, verdict))

    return on_deny


def call_flagged_alerts(alerts: AlertEmitter, which: Literal["findings", "all", "off"]) -> DenialListener | None:
    """A listener that alerts on each allowed call marked `log`, or None when `which` is `off`.

    `findings`: only calls the policy marked because of what it found in them (a catalogue entry
    set to `log`, or a would-be denial or hold under the `audit-only` profile), so the audit log's
    "unusual query scope" reaches a person; `all`: also calls a rule's `log: true` marked.
    """
    if which == "off":
        return None

    def on_flag(call: ToolCall, verdict: Verdict) -> None:
        found = "catalogue:" in verdict.check or verdict.reason.startswith("audit-only profile:")
        if not (verdict.allowed and verdict.log) or (which == "findings" and not found):
            return
        alerts.emit(_verdict_alert(AlertKind.CALL_FLAGGED, "flagged", call, verdict))

    return on_flag


def _verdict_alert(kind: AlertKind, what: str, call: ToolCall, verdict: Verdict) -> Alert:
    details = {
        "agent": call.principal.agent,
        "server": call.server,
        "tool": call.tool,
        "check": verdict.check,
        "reason": verdict.reason,
    }
    summary = f"{what} {call.principal.agent} -> {call.server}/{call.tool}: {verdict.reason}"
    return Alert(kind, summary, details)

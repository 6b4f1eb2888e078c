"""How a tool call ended, in the words of the `bastion_tool_calls_total{outcome}` label.

A call's audit trail says it: the verdict (`call.verdict`) names the deciding check, and
the completion (`call.completed`) says whether the call was answered, refused or failed.
`CallOutcomes` pairs the two per correlation id (bounded: a verdict whose completion never
comes, as after a crash, is forgotten oldest first) and names the outcome.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Final, Literal

from bastion.approvals.gate import CHECK_NAME as APPROVAL_CHECK
from bastion.approvals.gate import QUEUED_REASON_PREFIX
from bastion.audit.events import CallCompleted, VerdictReached
from bastion.guard.ratelimit.check import CHECK_NAME as RATE_LIMIT_CHECK

CallOutcome = Literal["allowed", "denied", "held", "approved", "failed", "rate_limited"]
OUTCOMES: Final[tuple[CallOutcome, ...]] = ("allowed", "denied", "held", "approved", "failed", "rate_limited")

_REMEMBERED = 4096


class CallOutcomes:
    """Pairs `call.verdict` with `call.completed` (see the module docstring)."""

    def __init__(self, remembered: int = _REMEMBERED) -> None:
        self._held: OrderedDict[str, None] = OrderedDict()
        self._remembered = remembered

    def saw_verdict(self, event: VerdictReached) -> None:
        if event.correlation_id is None:
            return
        if event.rule == APPROVAL_CHECK and event.verdict == "deny" and event.reason.startswith(QUEUED_REASON_PREFIX):
            self._held[event.correlation_id] = None
            while len(self._held) > self._remembered:
                self._held.popitem(last=False)

    def outcome(self, event: CallCompleted) -> CallOutcome:
        held = event.correlation_id is not None and self._held.pop(event.correlation_id, False) is None
        if event.outcome == "denied":
            if held:
                return "held"
            return "rate_limited" if event.rule == RATE_LIMIT_CHECK else "denied"
        if event.outcome == "error" or event.is_error:
            return "failed"
        if event.approval_id is not None or event.allow_rule_id is not None:
            return "approved"
        return "allowed"

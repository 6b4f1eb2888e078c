"""The approval stage of the guard pipeline: what happens to a call a check wants a person to see.

On an `ask` verdict, in order:
1. an "always allow" rule for this agent, server, tool and arguments lets it through;
2. an approved, unused approval of the identical call, decided within `retry_window`, lets it
   through once (the retry after "queued for human review");
3. otherwise the call joins the pending approval of the identical call, or creates one, and
   waits up to `wait` seconds: approved lets it through, denied refuses it with the approver's
   reason, still undecided refuses it with the approval id and how to retry.

Only the store decides: nothing in the call's arguments or `_meta` is read here except to
tell identical calls apart, so an agent cannot approve its own call.
"""

from __future__ import annotations

import logging

import anyio

from bastion.alerts.model import Alert, AlertEmitter, AlertKind
from bastion.approvals.config import ApprovalsConfig
from bastion.approvals.events import (
    AllowRuleApplied,
    ApprovalExpired,
    ApprovalRequested,
    ApprovalUsed,
    EventSink,
)
from bastion.approvals.model import Approval, ApprovalState, call_fingerprint
from bastion.approvals.store import ApprovalStore
from bastion.model import Decision, ToolCall, Verdict

logger = logging.getLogger(__name__)

CHECK_NAME = "approval"
QUEUED_REASON_PREFIX = "queued for human review"
"""How the verdict of a call the gate queued begins (metrics count such calls as held)."""
MAX_SWEEP_INTERVAL = 30.0


def _duration(seconds: float) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g} h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"


class ApprovalGate:
    """Resolves `ask` verdicts through an `ApprovalStore`; see the module docstring."""

    def __init__(
        self,
        store: ApprovalStore,
        settings: ApprovalsConfig,
        events: EventSink,
        alerts: AlertEmitter | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.events = events
        self.alerts = alerts

    async def resolve(self, call: ToolCall, asked: Verdict) -> Verdict:
        """ALLOW (approved) or DENY (denied, expired, or queued), never ASK."""
        agent = call.principal.agent
        arguments = dict(call.arguments)
        rule = self.store.matching_rule(agent, call.server, call.tool, arguments)
        if rule is not None:
            self.events.record(AllowRuleApplied(rule, call.call_id))
            return Verdict(
                Decision.ALLOW,
                f"always-allow rule {rule.id} by {rule.created_by}",
                check=CHECK_NAME,
                approval_id=rule.approval_id,
                allow_rule_id=rule.id,
            )
        fingerprint = call_fingerprint(agent, call.server, call.tool, arguments)
        used = self.store.consume_approved(fingerprint, self.settings.retry_window)
        if used is not None:
            self.events.record(ApprovalUsed(used, call.call_id))
            return self._approved(used)
        approval = self.store.pending_for(fingerprint)
        if approval is None:
            approval = self.store.create(
                agent=agent,
                server=call.server,
                tool=call.tool,
                arguments=arguments,
                rule=asked.check,
                reason=asked.reason,
                expire_after=self.settings.expire_after,
            )
            self.events.record(ApprovalRequested(approval, call.call_id))
            self._alert(
                AlertKind.APPROVAL_REQUESTED,
                f"{agent} called {call.server}/{call.tool}: held for approval {approval.id} ({asked.reason})",
                approval,
            )
        if self.settings.wait > 0:
            approval = await self.store.wait_for_decision(approval.id, self.settings.wait)
        return self._outcome(approval, call)

    def _outcome(self, approval: Approval, call: ToolCall) -> Verdict:
        if approval.state is ApprovalState.APPROVED:
            if self.store.consume(approval.id):
                self.events.record(ApprovalUsed(approval, call.call_id))
                return self._approved(approval)
            return Verdict(
                Decision.DENY,
                f"approval {approval.id} was already used by an identical call; each approval admits one call",
                check=CHECK_NAME,
            )
        if approval.state is ApprovalState.DENIED:
            why = approval.decision_reason or "no reason given"
            return Verdict(
                Decision.DENY,
                f"a person denied it (approval {approval.id}, by {approval.decided_by}): {why}",
                check=CHECK_NAME,
            )
        if approval.state is ApprovalState.EXPIRED:
            return Verdict(Decision.DENY, f"approval {approval.id} expired before anyone decided it", check=CHECK_NAME)
        return Verdict(
            Decision.DENY,
            f"{QUEUED_REASON_PREFIX} as approval {approval.id} ({approval.reason}). "
            f"Once a person approves it, retry the identical call (same tool and arguments) "
            f"within {_duration(self.settings.retry_window)}; it is then let through once. "
            f"Undecided, it expires in {_duration(self.settings.expire_after)}.",
            check=CHECK_NAME,
        )

    @staticmethod
    def _approved(approval: Approval) -> Verdict:
        return Verdict(
            Decision.ALLOW,
            f"approval {approval.id} by {approval.decided_by}",
            check=CHECK_NAME,
            approval_id=approval.id,
        )

    def sweep(self) -> list[Approval]:
        """Record the approvals that expired undecided; each is denied, recorded, and alerted once."""
        expired = self.store.expire_due()
        for approval in expired:
            self.events.record(ApprovalExpired(approval))
            self._alert(
                AlertKind.APPROVAL_EXPIRED,
                f"approval {approval.id} ({approval.agent} -> {approval.server}/{approval.tool}) expired undecided",
                approval,
            )
        return expired

    async def run_sweeper(self) -> None:
        """Sweep expired approvals forever (run as a background task)."""
        interval = min(MAX_SWEEP_INTERVAL, self.settings.expire_after / 2)
        while True:
            try:
                self.sweep()
            except Exception:
                logger.exception("could not expire approvals; retrying")
            await anyio.sleep(interval)

    def _alert(self, kind: AlertKind, summary: str, approval: Approval) -> None:
        if self.alerts is None:
            return
        details = {
            "approval_id": approval.id,
            "agent": approval.agent,
            "server": approval.server,
            "tool": approval.tool,
            "rule": approval.rule,
            "reason": approval.reason,
        }
        self.alerts.emit(Alert(kind, summary, details))

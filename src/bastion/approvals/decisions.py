"""Deciding an approval: the one path the CLI and the admin API share, so each decision is recorded."""

from __future__ import annotations

from bastion.approvals.events import ApprovalDecided, EventSink
from bastion.approvals.model import Approval
from bastion.approvals.store import ApprovalStore


def decide(
    store: ApprovalStore,
    events: EventSink,
    approval_id: str,
    *,
    approve: bool,
    decided_by: str,
    reason: str = "",
    always: bool = False,
    via: str,
) -> Approval:
    """Approve or deny, recording who, when and why. Raises ApprovalError when it cannot be decided."""
    decided = store.decide(approval_id, approve=approve, decided_by=decided_by, reason=reason, always=always)
    events.record(ApprovalDecided(decided, via))
    return decided

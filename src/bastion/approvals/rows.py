"""Approvals and rules as both stores keep them: column lists and row decoding."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from bastion.approvals.model import AllowRule, Approval, ApprovalState

APPROVAL_COLUMNS = (
    "id, agent, server, tool, arguments, rule, reason, created_at, expires_at, state, "
    "decided_by, decided_at, decision_reason, always, consumed_at"
)
RULE_COLUMNS = "id, agent, server, tool, arguments, created_by, created_at, reason, approval_id"
ID_ATTEMPTS = 5


def approval_of(row: tuple[Any, ...]) -> Approval:
    (id_, agent, server, tool, arguments, rule, reason, created, expires, state, by, at, why, always, used) = row
    return Approval(
        id=id_,
        agent=agent,
        server=server,
        tool=tool,
        arguments=json.loads(arguments),
        rule=rule,
        reason=reason,
        created_at=created,
        expires_at=expires,
        state=ApprovalState(state),
        decided_by=by,
        decided_at=at,
        decision_reason=why,
        always=bool(always),
        consumed_at=used,
    )


def rule_of(row: tuple[Any, ...]) -> AllowRule:
    id_, agent, server, tool, arguments, created_by, created_at, reason, approval_id = row
    return AllowRule(id_, agent, server, tool, json.loads(arguments), created_by, created_at, reason, approval_id)


def effective(approval: Approval, now: float) -> Approval:
    """Past its expiry, a pending approval is expired, even before `expire_due` records it."""
    if approval.state is ApprovalState.PENDING and approval.expires_at <= now:
        return replace(approval, state=ApprovalState.EXPIRED)
    return approval

"""Approvals and rules as both stores keep them: the statements, their parameters, row decoding.

Statements are written with `?` placeholders (SQLite's); the PostgreSQL store turns them
into `%s` with `bastion.state.postgres.placeholders.postgres`. The decision rules both
stores apply are here too, so the two cannot drift apart.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import replace
from typing import Any

from bastion.approvals.model import AllowRule, Approval, ApprovalError, ApprovalState, canonical_arguments

APPROVAL_COLUMNS = (
    "id, agent, server, tool, arguments, rule, reason, created_at, expires_at, state, "
    "decided_by, decided_at, decision_reason, always, consumed_at"
)
RULE_COLUMNS = "id, agent, server, tool, arguments, created_by, created_at, reason, approval_id"

INSERT_APPROVAL = (
    "INSERT INTO approvals (id, fingerprint, agent, server, tool, arguments, rule, reason, "
    "created_at, expires_at, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
SELECT_BY_ID = f"SELECT {APPROVAL_COLUMNS} FROM approvals WHERE id = ?"
SELECT_ALL = f"SELECT {APPROVAL_COLUMNS} FROM approvals ORDER BY created_at, id"
SELECT_PENDING = (
    f"SELECT {APPROVAL_COLUMNS} FROM approvals WHERE fingerprint = ? AND state = ? AND expires_at > ? "
    "ORDER BY created_at LIMIT 1"
)
UPDATE_DECISION = (
    "UPDATE approvals SET state = ?, decided_by = ?, decided_at = ?, decision_reason = ?, always = ? WHERE id = ?"
)
INSERT_RULE = f"INSERT INTO allow_rules ({RULE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
CONSUME = "UPDATE approvals SET consumed_at = ? WHERE id = ? AND state = ? AND consumed_at IS NULL"
SELECT_MATCHING_RULE = (
    f"SELECT {RULE_COLUMNS} FROM allow_rules WHERE agent = ? AND server = ? AND tool = ? "
    "AND arguments = ? AND revoked_at IS NULL ORDER BY created_at LIMIT 1"
)
SELECT_RULES = f"SELECT {RULE_COLUMNS} FROM allow_rules WHERE revoked_at IS NULL ORDER BY created_at, id"
REVOKE_RULE = "UPDATE allow_rules SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL"
EXPIRE_DUE = f"UPDATE approvals SET state = ? WHERE state = ? AND expires_at <= ? RETURNING {APPROVAL_COLUMNS}"


def consume_approved_statement(lock: str = "") -> str:
    """Use the oldest approved, unused approval of a call (`lock`: a row-locking clause for PostgreSQL)."""
    return (
        "UPDATE approvals SET consumed_at = ? WHERE id = ("
        "SELECT id FROM approvals WHERE fingerprint = ? AND state = ? AND consumed_at IS NULL "
        f"AND decided_at > ? ORDER BY decided_at LIMIT 1{lock}) AND consumed_at IS NULL "
        f"RETURNING {APPROVAL_COLUMNS}"
    )


def new_approval(*, now: float, expire_after: float, **call: Any) -> Approval:
    """A pending approval of `call` (agent, server, tool, arguments, rule, reason) with a fresh short id."""
    return Approval(
        id=secrets.token_hex(4),
        **{**call, "arguments": dict(call["arguments"])},
        created_at=now,
        expires_at=now + expire_after,
    )


def insert_parameters(approval: Approval) -> tuple[Any, ...]:
    """The parameters of `INSERT_APPROVAL` for a new approval."""
    return (
        approval.id,
        approval.fingerprint,
        approval.agent,
        approval.server,
        approval.tool,
        canonical_arguments(approval.arguments),
        approval.rule,
        approval.reason,
        approval.created_at,
        approval.expires_at,
        ApprovalState.PENDING.value,
    )


def decision_state(*, approve: bool, decided_by: str, always: bool) -> ApprovalState:
    """The state a decision leads to; raises for a decision no store may record."""
    if not decided_by:
        raise ValueError("a decision must name who decided")
    if always and not approve:
        raise ApprovalError("`always` applies to approvals only")
    return ApprovalState.APPROVED if approve else ApprovalState.DENIED


def pending(row: tuple[Any, ...] | None, approval_id: str, now: float) -> Approval:
    """The approval a decision is about, which must exist and still be pending."""
    if row is None:
        raise ApprovalError(f"no approval with id {approval_id!r}")
    current = effective(approval_of(row), now)
    if current.state is not ApprovalState.PENDING:
        raise ApprovalError(f"approval {approval_id} is already {current.state.value}")
    return current


def rule_parameters(approval: Approval, *, decided_by: str, now: float, reason: str) -> tuple[Any, ...]:
    """The parameters of `INSERT_RULE` for the "always allow" rule an approval creates."""
    return (
        secrets.token_hex(4),
        approval.agent,
        approval.server,
        approval.tool,
        canonical_arguments(approval.arguments),
        decided_by,
        now,
        reason,
        approval.id,
    )


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

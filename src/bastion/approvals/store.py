"""The approval store interface: SQLite (one host) and PostgreSQL (replicas, LISTEN/NOTIFY) implement it."""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from typing import Any, Protocol

from bastion.approvals.model import AllowRule, Approval, ApprovalState


class ApprovalStore(Protocol):
    """Pending approvals and "always allow" rules, shared by the gateway and the CLI.

    Every method but `wait_for_decision` is synchronous and quick. `wait_for_decision` must
    wake promptly when another process (the CLI, another replica) decides.
    """

    def create(
        self,
        *,
        agent: str,
        server: str,
        tool: str,
        arguments: Mapping[str, Any],
        rule: str,
        reason: str,
        expire_after: float,
    ) -> Approval: ...

    def get(self, approval_id: str) -> Approval | None: ...

    def list(self, state: ApprovalState | None = None) -> list[Approval]: ...

    def pending_for(self, fingerprint: str) -> Approval | None:
        """The undecided, unexpired approval of this exact call, if there is one."""
        ...

    def decide(
        self, approval_id: str, *, approve: bool, decided_by: str, reason: str = "", always: bool = False
    ) -> Approval:
        """Approve or deny a pending approval. Raises ApprovalError if it is not pending."""
        ...

    def consume(self, approval_id: str) -> bool:
        """Mark an approved approval as used; False if it was used already."""
        ...

    def consume_approved(self, fingerprint: str, retry_window: float) -> Approval | None:
        """Use an approved, unused approval of this exact call decided within `retry_window` seconds."""
        ...

    def matching_rule(self, agent: str, server: str, tool: str, arguments: Mapping[str, Any]) -> AllowRule | None: ...

    def rules(self) -> builtins.list[AllowRule]: ...

    def revoke_rule(self, rule_id: str) -> bool: ...

    def expire_due(self) -> builtins.list[Approval]:
        """Mark pending approvals past their expiry as expired; returns them."""
        ...

    async def wait_for_decision(self, approval_id: str, within: float) -> Approval:
        """The approval once decided (or expired), or as it is after `within` seconds."""
        ...

    def close(self) -> None: ...

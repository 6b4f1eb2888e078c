"""What the dashboard reads and acts on: the gateway's own stores and sinks, passed in one object."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from bastion.admin.tokens import AdminTokenStore
from bastion.alerts.recent import RecentAlerts
from bastion.approvals.events import EventSink
from bastion.approvals.store import ApprovalStore
from bastion.audit.store import AuditStore
from bastion.auth.tokens import TokenStore
from bastion.config import BastionConfig
from bastion.guard.pinning.events import PinEventSink
from bastion.guard.pinning.store import PinStore
from bastion.guard.policy.lint import CompiledPolicy
from bastion.upstream.server_status import ServerStatus


@dataclass(frozen=True, slots=True)
class LimitUsage:
    """One limit of one agent and how much of it is used now, e.g. `calls/minute`, 12 of 60."""

    name: str
    used: float
    limit: float

    @property
    def fraction(self) -> float:
        return 0.0 if self.limit <= 0 else min(1.0, self.used / self.limit)


class UsageProvider(Protocol):
    """Each agent's usage against its limits (the Agents page shows it when given)."""

    async def usage(self, agents: Sequence[str]) -> Mapping[str, Sequence[LimitUsage]]: ...


@dataclass(frozen=True, slots=True)
class DashboardServices:
    """Everything the pages need. `pins` is None when tool pinning is off; `usage` None until limits exist."""

    config: BastionConfig
    audit: AuditStore
    approvals: ApprovalStore
    approval_events: EventSink
    admin_tokens: AdminTokenStore
    tokens: TokenStore
    policy: CompiledPolicy
    servers: Callable[[], list[ServerStatus]]
    alerts: RecentAlerts
    secret_file: Path
    """Where the key that signs session cookies is kept (created 0600 on first use)."""
    pins: PinStore | None = None
    pin_events: PinEventSink | None = None
    usage: UsageProvider | None = None

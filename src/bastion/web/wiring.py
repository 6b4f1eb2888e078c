"""Building the dashboard from a running gateway's stores."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from bastion.admin.tokens import AdminTokenStore
from bastion.guard.policy.lint import policy_of
from bastion.guard.ratelimit.check import RateLimitCheck
from bastion.web.app import Dashboard
from bastion.web.services import DashboardServices, LimitUsage

if TYPE_CHECKING:
    from bastion.gateway.gateway import Gateway

SECRET_FILE = "dashboard_secret"


def gateway_dashboard(gateway: Gateway, admin_tokens: AdminTokenStore) -> Dashboard:
    """The dashboard over `gateway`'s stores (call once they are open, inside `Gateway.running`)."""
    config = gateway.config
    assert gateway.approvals is not None
    assert gateway.tokens is not None
    services = DashboardServices(
        config=config,
        audit=gateway.audit,
        approvals=gateway.approvals,
        approval_events=gateway.events,
        admin_tokens=admin_tokens,
        tokens=gateway.tokens,
        policy=policy_of(config),
        servers=gateway.server_statuses,
        alerts=gateway.recent_alerts,
        secret_file=config.data_dir / SECRET_FILE,
        pins=gateway.pins,
        pin_events=gateway.pin_events,
        usage=RateLimitUsage(gateway.limits) if gateway.limits is not None else None,
    )
    secure = bool(config.public_url and config.public_url.startswith("https://"))
    return Dashboard(services, secure_cookies=secure)


class RateLimitUsage:
    """The Agents page's usage rows, read from the gateway's rate-limit counters (never counted)."""

    def __init__(self, limits: RateLimitCheck) -> None:
        self._limits = limits

    async def usage(self, agents: Sequence[str]) -> Mapping[str, Sequence[LimitUsage]]:
        wanted = set(agents)
        by_agent: dict[str, list[LimitUsage]] = {}
        for row in await self._limits.usage():
            if row.agent in wanted:
                scope = " ".join(part for part in (row.server, row.tool) if part)
                name = f"{row.limit} ({scope})" if scope else row.limit
                by_agent.setdefault(row.agent, []).append(LimitUsage(name, row.used, row.limit_amount))
        return by_agent

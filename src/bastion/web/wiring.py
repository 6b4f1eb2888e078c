"""Building the dashboard from the services object a running gateway hands it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from bastion.guard.ratelimit.check import RateLimitCheck
from bastion.web.app import Dashboard
from bastion.web.services import DashboardServices, LimitUsage

SECRET_FILE = "dashboard_secret"
"""Under `data_dir`: the key that signs the dashboard's session cookies."""


def gateway_dashboard(services: DashboardServices) -> Dashboard:
    """The dashboard over a running gateway's stores (the gateway builds `services` once they are open)."""
    public_url = services.config.public_url
    return Dashboard(services, secure_cookies=bool(public_url and public_url.startswith("https://")))


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

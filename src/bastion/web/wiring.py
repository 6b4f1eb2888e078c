"""Building the dashboard from a running gateway's stores."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bastion.admin.tokens import AdminTokenStore
from bastion.guard.policy.lint import policy_of
from bastion.web.app import Dashboard
from bastion.web.services import DashboardServices, UsageProvider

if TYPE_CHECKING:
    from bastion.gateway.gateway import Gateway

SECRET_FILE = "dashboard_secret"


def gateway_dashboard(gateway: Gateway, admin_tokens: AdminTokenStore, usage: UsageProvider | None = None) -> Dashboard:
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
        usage=usage,
    )
    secure = bool(config.public_url and config.public_url.startswith("https://"))
    return Dashboard(services, secure_cookies=secure)

"""The dashboard in-process over real stores (SQLite audit log, approvals, tokens, pins) in a temporary folder."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
import yaml

from bastion.admin.sqlite_tokens import SqliteAdminTokenStore
from bastion.admin.tokens import Role
from bastion.alerts.recent import RecentAlerts
from bastion.approvals.events import ListEventSink
from bastion.approvals.sqlite_store import SqliteApprovalStore
from bastion.auth.sqlite_tokens import SqliteTokenStore
from bastion.config import load_config
from bastion.gateway.gateway import open_audit
from bastion.guard.pinning import LoggingPinEventSink, SqlitePinStore
from bastion.guard.policy.lint import policy_of
from bastion.upstream.server_status import ServerStatus
from bastion.web.app import Dashboard
from bastion.web.services import DashboardServices, UsageProvider

BASE = "http://dash.test"
CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')
LOGIN = re.compile(r'name="login_token" value="([0-9a-f]+)"')
POLICY = {
    "rules": [
        {
            "name": "big-refunds",
            "match": {"server": "time", "tool": "refund"},
            "when": {"arguments.amount": {"gt": 100}},
            "action": "ask",
        }
    ]
}


class Dash:
    """A dashboard over fresh stores, and an admin token for each role."""

    def __init__(self, tmp_path: Path, usage: UsageProvider | None = None) -> None:
        data = tmp_path / "data"
        tmp_path.mkdir(parents=True, exist_ok=True)
        config_path = tmp_path / "bastion.yaml"
        servers = {"time": {"command": "mcp-server-time"}}
        config_path.write_text(yaml.safe_dump({"data_dir": str(data), "servers": servers, "policy": POLICY}))
        self.config = load_config(config_path)
        self.audit = open_audit(self.config)
        self.approvals = SqliteApprovalStore(data / "approvals.db")
        self.admin_tokens = SqliteAdminTokenStore(data / "admin_tokens.db")
        self.tokens = SqliteTokenStore(data / "tokens.db")
        self.pins = SqlitePinStore(data / "pins.db")
        self.events = ListEventSink()
        self.alerts = RecentAlerts()
        self.secrets = {role: self.admin_tokens.create(f"{role.label}-person", role)[1] for role in Role}
        self.services = DashboardServices(
            config=self.config,
            audit=self.audit,
            approvals=self.approvals,
            approval_events=self.events,
            admin_tokens=self.admin_tokens,
            tokens=self.tokens,
            policy=policy_of(self.config),
            servers=lambda: [ServerStatus("time", "stdio", "mcp-server-time", "up", True, "none")],
            alerts=self.alerts,
            secret_file=data / "dashboard_secret",
            pins=self.pins,
            pin_events=LoggingPinEventSink(),
            usage=usage,
        )
        self.dashboard = Dashboard(self.services)
        self._clients: list[httpx2.AsyncClient] = []

    def hold(self, **arguments: Any) -> str:
        approval = self.approvals.create(
            agent="bot",
            server="time",
            tool="refund",
            arguments=arguments or {"amount": 500},
            rule="policy/rule:big-refunds",
            reason="big refund",
            expire_after=600,
        )
        return approval.id

    def client(self) -> httpx2.AsyncClient:
        transport = httpx2.ASGITransport(app=self.dashboard.app)
        http = httpx2.AsyncClient(transport=transport, base_url=BASE, headers={"origin": BASE})
        self._clients.append(http)
        return http

    async def signed_in(self, role: Role) -> tuple[httpx2.AsyncClient, str]:
        """A client with a session for `role`, and that session's CSRF token."""
        http = self.client()
        form = await http.get("/ui/login")
        login_token = LOGIN.search(form.text)
        assert login_token, form.text
        done = await http.post("/ui/login", data={"token": self.secrets[role], "login_token": login_token[1]})
        assert done.status_code == 303, done.text
        page = await http.get("/ui/")
        assert page.status_code == 200, page.text
        csrf = CSRF.search(page.text)
        assert csrf
        return http, csrf[1]

    async def close(self) -> None:
        for http in self._clients:
            await http.aclose()
        await self.audit.close()
        for store in (self.approvals, self.admin_tokens, self.tokens, self.pins):
            store.close()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def dash(tmp_path: Path) -> AsyncIterator[Dash]:
    made = Dash(tmp_path)
    await made.audit.open()
    yield made
    await made.close()

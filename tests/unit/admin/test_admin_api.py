from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from bastion.admin.api import AdminApi
from bastion.admin.sqlite_tokens import SqliteAdminTokenStore
from bastion.admin.tokens import Role
from bastion.approvals.events import ApprovalDecided, ListEventSink
from bastion.approvals.model import ApprovalState
from bastion.model import Principal
from tests.unit.state_backends import BACKENDS, StateBackend, state_backend

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Setup:
    def __init__(self, backend: StateBackend) -> None:
        self.approvals = backend.approvals()
        self.admin_tokens = backend.admin_tokens()
        self.agent_tokens = backend.tokens()
        self.events = ListEventSink()
        self.tokens = {role: self.admin_tokens.create(f"{role.label}-person", role)[1] for role in Role}
        self.agent_token = self.agent_tokens.create("bot")[1]

        async def agent_auth(header: str | None) -> Principal | None:
            token = header[7:] if header and header.startswith("Bearer ") else ""
            return self.agent_tokens.verify(token)

        self.api = AdminApi(self.approvals, self.admin_tokens, agent_auth, self.events)

    def held(self, **arguments: Any) -> str:
        approval = self.approvals.create(
            agent="bot",
            server="db",
            tool="drop",
            arguments=arguments or {"table": "users"},
            rule="policy:drop",
            reason="drops a table",
            expire_after=600,
        )
        return approval.id


@pytest.fixture(params=BACKENDS)
async def setup(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Setup]:
    with state_backend(request.param, tmp_path) as backend:
        yield Setup(backend)


def client(setup: Setup, token: str | None) -> httpx2.AsyncClient:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx2.AsyncClient(transport=httpx2.ASGITransport(app=setup.api.app), base_url="http://t", headers=headers)


@pytest.mark.parametrize(
    ("who", "method", "path", "status"),
    [
        (None, "GET", "/admin/api/approvals", 401),
        ("garbage", "GET", "/admin/api/approvals", 401),
        ("agent", "GET", "/admin/api/approvals", 403),
        ("agent", "POST", "/admin/api/approvals/{id}/approve", 403),
        ("viewer", "GET", "/admin/api/approvals", 200),
        ("viewer", "GET", "/admin/api/approvals/{id}", 200),
        ("viewer", "POST", "/admin/api/approvals/{id}/approve", 403),
        ("approver", "POST", "/admin/api/approvals/{id}/deny", 200),
        ("approver", "DELETE", "/admin/api/rules/nope", 403),
        ("admin", "DELETE", "/admin/api/rules/nope", 404),
        ("admin", "GET", "/admin/api/approvals/nope1234", 404),
        (None, "GET", "/admin/api/openapi.json", 200),
    ],
)
async def test_credentials_and_roles(setup: Setup, who: str | None, method: str, path: str, status: int) -> None:
    token = {"agent": setup.agent_token, "garbage": "bsa_00000000_" + "x" * 43, None: None}.get(who)
    if who in ("viewer", "approver", "admin"):
        token = setup.tokens[Role.parse(who)]
    async with client(setup, token) as http:
        response = await http.request(method, path.format(id=setup.held()))
    assert response.status_code == status, response.text
    if status == 401:
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert setup.approvals.list(ApprovalState.APPROVED) == []


async def test_approve_and_deny_record_who_and_why(setup: Setup) -> None:
    first, second = setup.held(table="a"), setup.held(table="b")
    async with client(setup, setup.tokens[Role.APPROVER]) as http:
        approved = await http.post(f"/admin/api/approvals/{first}/approve", json={"reason": "ticket 7", "always": True})
        denied = await http.post(f"/admin/api/approvals/{second}/deny", json={"reason": "no"})
        again = await http.post(f"/admin/api/approvals/{first}/deny", json={})
        bad = await http.post(f"/admin/api/approvals/{second}/deny", json={"approved": True})
        listed = await http.get("/admin/api/approvals", params={"state": "denied"})
        rules = await http.get("/admin/api/rules")
    assert approved.status_code == 200
    body = approved.json()
    assert (body["state"], body["decided_by"], body["decision_reason"], body["always"]) == (
        "approved",
        "api:approver-person",
        "ticket 7",
        True,
    )
    assert denied.json()["state"] == "denied"
    assert again.status_code == 409
    assert bad.status_code == 400
    assert [a["id"] for a in listed.json()["approvals"]] == [second]
    assert [r["approval_id"] for r in rules.json()["rules"]] == [first]
    decided = [e for e in setup.events.events if isinstance(e, ApprovalDecided)]
    assert [(e.approval.id, e.via) for e in decided] == [(first, "api"), (second, "api")]


async def test_openapi_describes_every_route(setup: Setup) -> None:
    async with client(setup, None) as http:
        document = (await http.get("/admin/api/openapi.json")).json()
    assert document["openapi"].startswith("3.1")
    routes = {route.path for route in setup.api.app.routes}  # type: ignore[attr-defined]
    described = set(document["paths"]) | {"/admin/api/openapi.json"}
    assert routes == described
    docs = (Path(__file__).parents[3] / "docs" / "admin-api.md").read_text(encoding="utf-8")
    for path in document["paths"]:
        assert path in docs, path


def test_admin_tokens_are_hashed(tmp_path: Path) -> None:
    store = SqliteAdminTokenStore(tmp_path / "admin_tokens.db")
    _, token = store.create("alice", Role.VIEWER)
    store.close()
    secret = token.split("_", 2)[2].encode()  # bsa_<id>_<secret>; the secret may contain "_"
    assert not any(secret in path.read_bytes() for path in tmp_path.iterdir())


@pytest.mark.parametrize("kind", BACKENDS)
def test_admin_tokens_are_revocable_everywhere(tmp_path: Path, kind: str) -> None:
    with state_backend(kind, tmp_path) as backend:
        store, other = backend.admin_tokens(), backend.admin_tokens()
        identity, token = store.create("alice", Role.VIEWER)
        assert store.verify(token) == identity
        assert other.verify(token) == identity
        assert [i.id for i in other.list()] == [identity.id]
        assert store.verify(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
        assert other.revoke(identity.id)
        assert not other.revoke(identity.id)
        assert store.verify(token) is None  # read on every check: no delay
        with pytest.raises(ValueError, match="name"):
            store.create("bad name", Role.ADMIN)

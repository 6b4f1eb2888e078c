"""Every route x every kind of credential, with the status each cell must get (issue 13, item 6).

The rows are enumerated from the app's own routing (`http_app.ROUTES`, the admin API's and the
dashboard's Starlette routes): a route added without a row here fails
`test_every_route_has_a_row`. Credentials are sent as `Authorization` headers; the dashboard
ignores those (it is cookie-signed-in), so its session cells are in `test_dashboard_sessions`.

`/readyz` answers strangers only `{"ready": ...}`: its details go to an admin token or the
gateway's status key (issue 13, item 3).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest
from starlette.routing import BaseRoute, Mount, Route

from bastion.auth.sqlite_tokens import SqliteTokenStore
from bastion.front.http_app import ROUTES
from bastion.stores import TOKENS_DB
from tests.security.front_door import FrontDoor, front_door

pytestmark = pytest.mark.e2e

ADMIN_KINDS = ("viewer", "approver", "admin")
ROLE_RANK = {"viewer": 1, "approver": 2, "admin": 3}
AGENT_OK = frozenset({"agent", "jwt"})
"""Credentials that reach the `time` server."""
AGENT_ELSEWHERE = frozenset({"scoped_agent", "jwt_scoped"})
"""Valid agent credentials that do not reach `time`."""
CREDENTIAL_KINDS = (
    "none",
    "basic",
    "malformed",
    "agent",
    "scoped_agent",
    "revoked",
    "expired",
    "jwt",
    "jwt_scoped",
    "jwt_alg_none",
    "jwt_wrong_key",
    "jwt_expired",
    "jwt_wrong_audience",
    "revoked_admin",
    "status_key",
    *ADMIN_KINDS,
)
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "matrix", "version": "1"}},
}
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


@dataclass(frozen=True)
class Row:
    """One route: how to call it, who may, and what a caller who may gets."""

    method: str
    path: str
    who: str
    """`public`, `agent` (an agent credential reaching the server), `any-agent` (any valid agent
    credential: the aggregate endpoint shows each the servers it reaches), a dashboard kind (`page`,
    `page-no-redirect`, `action`, `login`), or an admin role for the admin API."""
    ok: int
    body: Any = None


FRONT_ROWS = {
    "/servers/{name}/mcp": Row("POST", "/servers/time/mcp", "agent", 200, INITIALIZE),
    "/servers/{name}/sse": Row("GET", "/servers/time/sse", "agent", 200),
    "/servers/{name}/messages/": Row("POST", "/servers/time/messages/", "agent", 400, INITIALIZE),
    "/.well-known/oauth-protected-resource/servers/{name}/mcp": Row(
        "GET", "/.well-known/oauth-protected-resource/servers/time/mcp", "public", 200
    ),
    "/.well-known/oauth-protected-resource/servers/{name}/sse": Row(
        "GET", "/.well-known/oauth-protected-resource/servers/time/sse", "public", 200
    ),
    "/mcp": Row("POST", "/mcp", "any-agent", 200, INITIALIZE),
    "/sse": Row("GET", "/sse", "any-agent", 200),
    "/messages/": Row("POST", "/messages/", "any-agent", 400, INITIALIZE),
    "/.well-known/oauth-protected-resource/mcp": Row("GET", "/.well-known/oauth-protected-resource/mcp", "public", 200),
    "/healthz": Row("GET", "/healthz", "public", 200),
    "/readyz": Row("GET", "/readyz", "public", 200),
    "/metrics": Row("GET", "/metrics", "viewer", 200),
}
"""`http_app.ROUTES` but the mounted apps (rows of their own below)."""

ADMIN_ROWS = {
    ("GET", "/admin/api/openapi.json"): Row("GET", "/admin/api/openapi.json", "public", 200),
    ("GET", "/admin/api/whoami"): Row("GET", "/admin/api/whoami", "viewer", 200),
    ("GET", "/admin/api/approvals"): Row("GET", "/admin/api/approvals", "viewer", 200),
    ("GET", "/admin/api/approvals/{id}"): Row("GET", "/admin/api/approvals/nope", "viewer", 404),
    ("POST", "/admin/api/approvals/{id}/approve"): Row("POST", "/admin/api/approvals/nope/approve", "approver", 404),
    ("POST", "/admin/api/approvals/{id}/deny"): Row("POST", "/admin/api/approvals/nope/deny", "approver", 404),
    ("GET", "/admin/api/rules"): Row("GET", "/admin/api/rules", "viewer", 200),
    ("DELETE", "/admin/api/rules/{id}"): Row("DELETE", "/admin/api/rules/nope", "admin", 404),
    ("GET", "/admin/api/limits"): Row("GET", "/admin/api/limits", "viewer", 200),
    ("POST", "/admin/api/servers/{name}/restart"): Row("POST", "/admin/api/servers/nope/restart", "admin", 404),
    ("GET", "/admin/api/readiness"): Row("GET", "/admin/api/readiness", "viewer", 200),
}

DASHBOARD_ROWS = {
    ("GET", "/ui/login"): Row("GET", "/ui/login", "login", 200),
    ("POST", "/ui/login"): Row("POST", "/ui/login", "login", 403),
    ("POST", "/ui/logout"): Row("POST", "/ui/logout", "action:viewer", 303),
    ("GET", "/ui/"): Row("GET", "/ui/", "page:viewer", 200),
    ("GET", "/ui/approvals"): Row("GET", "/ui/approvals", "page:viewer", 200),
    ("GET", "/ui/approvals/pending"): Row("GET", "/ui/approvals/pending", "page-no-redirect:viewer", 200),
    ("POST", "/ui/approvals/{id}/decide"): Row("POST", "/ui/approvals/nope/decide", "action:approver", 303),
    ("GET", "/ui/audit"): Row("GET", "/ui/audit", "page:viewer", 200),
    ("GET", "/ui/audit/events/{seq:int}"): Row("GET", "/ui/audit/events/1", "page:viewer", 200),
    ("GET", "/ui/audit/export"): Row("GET", "/ui/audit/export", "page-no-redirect:viewer", 200),
    ("GET", "/ui/servers"): Row("GET", "/ui/servers", "page:viewer", 200),
    ("GET", "/ui/servers/{server}/tools/{tool}"): Row(
        "GET",
        "/ui/servers/time/tools/get_current_time",
        "page:viewer",
        404,  # not pinned: never listed
    ),
    ("POST", "/ui/servers/{server}/tools/{tool}/accept"): Row(
        "POST", "/ui/servers/time/tools/nope/accept", "action:admin", 404
    ),
    ("GET", "/ui/agents"): Row("GET", "/ui/agents", "page:viewer", 200),
    ("POST", "/ui/agents/tokens"): Row("POST", "/ui/agents/tokens", "action:admin", 400),
    ("POST", "/ui/agents/tokens/{id}/revoke"): Row("POST", "/ui/agents/tokens/nope/revoke", "action:admin", 303),
    ("GET", "/ui/policy"): Row("GET", "/ui/policy", "page:viewer", 200),
    ("POST", "/ui/policy/try"): Row("POST", "/ui/policy/try", "action:viewer", 200),
    ("POST", "/ui/policy/allow-rules/{id}/revoke"): Row(
        "POST", "/ui/policy/allow-rules/nope/revoke", "action:admin", 303
    ),
    ("GET", "/ui/static/{path}"): Row("GET", "/ui/static/app.css", "public", 200),
    ("GET", "/favicon.ico"): Row("GET", "/favicon.ico", "public", 200),
}


def expected_status(row: Row, kind: str) -> int:
    """The one status `kind` must get on `row` (headers only: the dashboard reads no bearer)."""
    who = row.who
    if who == "public":
        return row.ok
    if who == "any-agent":
        return row.ok if kind in AGENT_OK | AGENT_ELSEWHERE else 401
    if who == "agent":
        if kind in AGENT_OK:
            return row.ok
        return 403 if kind in AGENT_ELSEWHERE else 401
    if who in ROLE_RANK:  # the admin API
        if kind in ROLE_RANK:
            return row.ok if ROLE_RANK[kind] >= ROLE_RANK[who] else 403
        return 403 if kind in AGENT_OK | AGENT_ELSEWHERE else 401
    if who == "login":
        return row.ok
    if who.startswith("page:"):
        return 303
    return 401  # page-no-redirect and action: no session


def _routes(routes: list[BaseRoute], prefix: str = "") -> Iterator[tuple[str, str]]:
    for route in routes:
        if isinstance(route, Mount):
            if route.routes:
                yield from _routes(list(route.routes), prefix + route.path)
            else:
                yield "GET", prefix + route.path + "/{path}"
        elif isinstance(route, Route):
            for method in sorted((route.methods or {"GET"}) - {"HEAD"}):
                yield method, prefix + route.path


def _starlette_routes(app: Any) -> list[BaseRoute]:
    while not hasattr(app, "routes"):
        app = app.app  # a middleware around it
    return list(app.routes)


@pytest.fixture(scope="module")
def door(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FrontDoor]:
    with front_door(tmp_path_factory.mktemp("matrix")) as running:
        yield running


def test_every_route_has_a_row(door: FrontDoor) -> None:
    front = {route for route in ROUTES if not route.endswith("/...")}
    assert front == set(FRONT_ROWS), "http_app.ROUTES and FRONT_ROWS differ: add the new route's row"
    assert set(_routes(_starlette_routes(door.gateway.admin_api))) == set(ADMIN_ROWS)
    assert set(_routes(_starlette_routes(door.gateway.dashboard))) == set(DASHBOARD_ROWS)


def request(door: FrontDoor, row: Row, authorization: str | None) -> httpx2.Response:
    headers = dict(MCP_HEADERS) if row.path.startswith(("/servers/", "/mcp", "/sse", "/messages/")) else {}
    if authorization is not None:
        headers["Authorization"] = authorization
    content = json.dumps(row.body).encode() if row.body is not None else None
    with (
        httpx2.Client(base_url=door.base_url, timeout=20, follow_redirects=False) as http,
        http.stream(row.method, row.path, headers=headers, content=content) as response,
    ):
        # An SSE stream stays open: the status and headers are the answer; close it unread.
        if "text/event-stream" not in response.headers.get("content-type", ""):
            response.read()
        return response


ALL_ROWS = [*FRONT_ROWS.values(), *ADMIN_ROWS.values(), *DASHBOARD_ROWS.values()]


@pytest.mark.parametrize("kind", CREDENTIAL_KINDS)
@pytest.mark.parametrize("row", ALL_ROWS, ids=lambda row: f"{row.method} {row.path}")
def test_each_credential_gets_its_status_on_each_route(door: FrontDoor, row: Row, kind: str) -> None:
    response = request(door, row, door.credentials[kind])
    assert response.status_code == expected_status(row, kind), response.text[:300]


@pytest.mark.parametrize("kind", CREDENTIAL_KINDS)
def test_readyz_tells_strangers_only_whether_it_is_ready(door: FrontDoor, kind: str) -> None:
    response = request(door, FRONT_ROWS["/readyz"], door.credentials[kind])
    report = response.json()
    if kind in (*ADMIN_KINDS, "status_key"):
        assert set(report) >= {"ready", "audit_store", "servers", "runtime"}
        assert set(report["servers"]) == {"time", "time2"}
    else:
        assert report == {"ready": True}, "server names, limits and exits are for operators only"


def test_a_token_in_use_is_refused_once_another_process_revokes_it(door: FrontDoor) -> None:
    """The gateway remembers the tokens it has verified (`auth/verified_tokens.py`), so that an
    agent's next request skips parsing and hashing its token: a token in use must still be refused
    once `bastion token revoke` (another store on the same file) has revoked it, and a forged
    variant of it never accepted."""
    tokens = door.gateway.tokens
    assert tokens is not None
    info, token = tokens.create("revoked-while-in-use")
    row = FRONT_ROWS["/servers/{name}/mcp"]
    for _ in range(3):
        assert request(door, row, f"Bearer {token}").status_code == row.ok
    forged = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert request(door, row, f"Bearer {forged}").status_code == 401
    cli = SqliteTokenStore(door.gateway.config.data_dir / TOKENS_DB)
    try:
        assert cli.revoke(info.id)
    finally:
        cli.close()
    deadline = time.monotonic() + 10  # the gateway checks the file for changes every 0.5 s
    while (status := request(door, row, f"Bearer {token}").status_code) != 401 and time.monotonic() < deadline:
        pass
    assert status == 401


CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')
LOGIN = re.compile(r'name="login_token" value="([0-9a-f]+)"')


def signed_in(door: FrontDoor, role: str) -> tuple[httpx2.Client, str]:
    http = httpx2.Client(base_url=door.base_url, timeout=20, headers={"origin": door.base_url})
    form = http.get("/ui/login")
    login_token = LOGIN.search(form.text)
    assert login_token, form.text
    secret = str(door.credentials[role]).removeprefix("Bearer ")
    done = http.post("/ui/login", data={"token": secret, "login_token": login_token[1]})
    assert done.status_code == 303, done.text
    csrf = CSRF.search(http.get("/ui/").text)
    assert csrf
    return http, csrf[1]


SESSION_ROWS = [row for row in DASHBOARD_ROWS.values() if ":" in row.who and row.path != "/ui/logout"]


@pytest.mark.parametrize("role", ADMIN_KINDS)
@pytest.mark.parametrize("row", SESSION_ROWS, ids=lambda row: f"{row.method} {row.path}")
def test_dashboard_sessions_get_what_their_role_allows(door: FrontDoor, row: Row, role: str) -> None:
    http, csrf = signed_in(door, role)
    needed = row.who.split(":")[1]
    allowed = ROLE_RANK[role] >= ROLE_RANK[needed]
    try:
        if row.method == "GET":
            response = http.get(row.path)
        else:
            forged = http.post(row.path, data={})
            assert forged.status_code == 403, "a state-changing POST without the CSRF token is refused"
            response = http.post(row.path, data={"csrf_token": csrf}, follow_redirects=False)
    finally:
        http.close()
    assert response.status_code == (row.ok if allowed else 403), response.text[:300]


def test_the_fixture_has_every_credential(tmp_path: Path, door: FrontDoor) -> None:
    assert set(door.credentials) == set(CREDENTIAL_KINDS)

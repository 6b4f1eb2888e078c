"""Who may see and do what: sessions, roles, CSRF, Origin, cookies, escaping."""

from __future__ import annotations

import re

import pytest
from starlette.routing import Mount, Route

from bastion.admin.tokens import Role
from bastion.approvals.model import ApprovalState
from bastion.audit.query import EventQuery
from bastion.audit.search import search
from tests.unit.web.conftest import BASE, LOGIN, Dash

pytestmark = pytest.mark.anyio

PAGES = [
    "/ui/",
    "/ui/approvals",
    "/ui/audit",
    "/ui/audit/events/1",
    "/ui/servers",
    "/ui/servers/time/tools/now",
    "/ui/agents",
    "/ui/policy",
]
DATA = ["/ui/approvals/pending", "/ui/audit/export?format=csv", "/ui/audit/export?format=json"]
ACTIONS = [
    ("/ui/approvals/{id}/decide", {"decision": "approve"}),
    ("/ui/agents/tokens", {"agent": "bot"}),
    ("/ui/agents/tokens/abcd1234/revoke", {}),
    ("/ui/servers/time/tools/now/accept", {}),
    ("/ui/policy/try", {"server": "time", "tool": "x"}),
    ("/ui/policy/allow-rules/r1/revoke", {}),
    ("/ui/logout", {}),
]


@pytest.mark.parametrize("path", PAGES)
async def test_no_session_redirects_every_page_to_sign_in(dash: Dash, path: str) -> None:
    response = await dash.client().get(path)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/ui/login?next=")
    assert response.headers["x-frame-options"] == "DENY"


@pytest.mark.parametrize("path", DATA)
async def test_no_session_gets_401_on_data_routes(dash: Dash, path: str) -> None:
    dash.hold(note="secret-value")
    response = await dash.client().get(path)
    assert response.status_code == 401
    assert "secret-value" not in response.text


@pytest.mark.parametrize(("path", "form"), ACTIONS)
async def test_no_session_gets_401_on_every_action(dash: Dash, path: str, form: dict[str, str]) -> None:
    response = await dash.client().post(path.format(id=dash.hold()), data=form)
    assert response.status_code == 401


@pytest.mark.parametrize(("path", "form"), ACTIONS)
@pytest.mark.parametrize("csrf", [None, "wrong", ""])
async def test_a_missing_or_wrong_csrf_token_is_403(dash: Dash, path: str, form: dict[str, str], csrf: str | None):
    http, _ = await dash.signed_in(Role.ADMIN)
    approval = dash.hold()
    data = form if csrf is None else {**form, "csrf_token": csrf}
    response = await http.post(path.format(id=approval), data=data)
    assert response.status_code == 403, response.text
    assert dash.approvals.get(approval).state is ApprovalState.PENDING
    assert dash.tokens.list() == []


async def test_a_cross_site_origin_is_403_even_with_the_right_token(dash: Dash) -> None:
    http, csrf = await dash.signed_in(Role.ADMIN)
    approval = dash.hold()
    response = await http.post(
        f"/ui/approvals/{approval}/decide",
        data={"decision": "approve", "csrf_token": csrf},
        headers={"origin": "https://evil.example"},
    )
    assert response.status_code == 403
    assert dash.approvals.get(approval).state is ApprovalState.PENDING


async def test_a_viewer_sees_no_approve_button_and_cannot_approve(dash: Dash) -> None:
    http, csrf = await dash.signed_in(Role.VIEWER)
    approval = dash.hold()
    page = await http.get("/ui/approvals")
    assert approval in page.text
    assert 'value="approve"' not in page.text
    response = await http.post(f"/ui/approvals/{approval}/decide", data={"decision": "approve", "csrf_token": csrf})
    assert response.status_code == 403
    assert dash.approvals.get(approval).state is ApprovalState.PENDING


async def test_an_approver_approves_and_the_decision_names_them(dash: Dash) -> None:
    http, csrf = await dash.signed_in(Role.APPROVER)
    approval = dash.hold()
    response = await http.post(
        f"/ui/approvals/{approval}/decide", data={"decision": "always", "reason": "fine", "csrf_token": csrf}
    )
    assert response.status_code == 303
    decided = dash.approvals.get(approval)
    assert (decided.state, decided.decided_by, decided.decision_reason, decided.always) == (
        ApprovalState.APPROVED,
        "dashboard:approver-person",
        "fine",
        True,
    )
    [event] = dash.events.events
    assert event.via == "dashboard"


async def test_denying_needs_a_reason(dash: Dash) -> None:
    http, csrf = await dash.signed_in(Role.APPROVER)
    approval = dash.hold()
    await http.post(f"/ui/approvals/{approval}/decide", data={"decision": "deny", "csrf_token": csrf})
    assert dash.approvals.get(approval).state is ApprovalState.PENDING
    await http.post(f"/ui/approvals/{approval}/decide", data={"decision": "deny", "reason": "no", "csrf_token": csrf})
    assert dash.approvals.get(approval).state is ApprovalState.DENIED


@pytest.mark.parametrize("role", [Role.VIEWER, Role.APPROVER])
async def test_only_an_admin_creates_or_revokes_tokens(dash: Dash, role: Role) -> None:
    info, _ = dash.tokens.create("bot")
    http, csrf = await dash.signed_in(role)
    created = await http.post("/ui/agents/tokens", data={"agent": "bot2", "csrf_token": csrf})
    revoked = await http.post(f"/ui/agents/tokens/{info.id}/revoke", data={"csrf_token": csrf})
    assert (created.status_code, revoked.status_code) == (403, 403)
    assert [t.agent for t in dash.tokens.list() if t.state == "active"] == ["bot"]


async def test_an_admin_creates_a_token_shown_once_and_audited(dash: Dash) -> None:
    http, csrf = await dash.signed_in(Role.ADMIN)
    response = await http.post("/ui/agents/tokens", data={"agent": "bot", "expires": "1d", "csrf_token": csrf})
    assert response.status_code == 201
    secret = re.search(r"(bst_[0-9a-f]{8}_[A-Za-z0-9_-]{43})", response.text)
    assert secret
    assert dash.tokens.verify(secret[1]) is not None
    again = await http.get("/ui/agents")
    assert secret[1] not in again.text
    await dash.audit.flush()
    [event] = search(dash.audit, EventQuery(types=("token.created",))).events
    assert event.agent == "bot"
    bad = await http.post("/ui/agents/tokens", data={"agent": "bot", "servers": "nope", "csrf_token": csrf})
    assert bad.status_code == 400
    assert "no server named nope" in bad.text


async def test_script_in_tool_arguments_is_escaped_everywhere(dash: Dash) -> None:
    payload = "<script>window.__pwned=1</script>"
    dash.hold(amount=500, note=payload, **{payload: "key"})
    http, _ = await dash.signed_in(Role.ADMIN)
    for path in ("/ui/approvals", "/ui/approvals/pending"):
        page = await http.get(path)
        assert payload not in page.text
        assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in page.text


async def test_the_flagged_argument_is_highlighted(dash: Dash) -> None:
    dash.hold(amount=500, currency="EUR")
    http, _ = await dash.signed_in(Role.VIEWER)
    page = await http.get("/ui/approvals/pending")
    assert '<mark class="flag">500</mark>' in page.text
    assert '<mark class="flag">&#34;EUR&#34;</mark>' not in page.text


async def test_session_cookie_is_httponly_strict_and_ends_when_the_admin_token_is_revoked(dash: Dash) -> None:
    http = dash.client()
    form = await http.get("/ui/login")
    login_token = LOGIN.search(form.text)
    assert login_token
    done = await http.post("/ui/login", data={"token": dash.secrets[Role.VIEWER], "login_token": login_token[1]})
    cookie = done.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    assert "path=/ui" in cookie
    assert (await http.get("/ui/")).status_code == 200
    viewer = next(i for i in dash.admin_tokens.list() if i.role is Role.VIEWER)
    dash.admin_tokens.revoke(viewer.id)
    assert (await http.get("/ui/")).status_code == 303


async def test_cookies_are_secure_over_https(dash: Dash) -> None:
    http = dash.client()
    http.base_url = "https://dash.test"
    form = await http.get("/ui/login")
    assert "secure" in form.headers["set-cookie"].lower()


@pytest.mark.parametrize("token", ["bst_00000000_" + "a" * 43, "bsa_00000000_" + "a" * 43, ""])
async def test_sign_in_refuses_agent_and_unknown_tokens_and_audits_it(dash: Dash, token: str) -> None:
    http = dash.client()
    form = await http.get("/ui/login")
    login_token = LOGIN.search(form.text)
    assert login_token
    response = await http.post("/ui/login", data={"token": token, "login_token": login_token[1]})
    assert response.status_code == 401
    assert "session" not in response.headers.get("set-cookie", "")
    await dash.audit.flush()
    [event] = search(dash.audit, EventQuery(types=("auth.failure",))).events
    assert event.details["path"] == "/ui/login"


async def test_sign_in_needs_the_form_token_of_this_browser(dash: Dash) -> None:
    http = dash.client()
    response = await http.post("/ui/login", data={"token": dash.secrets[Role.ADMIN], "login_token": "0" * 64})
    assert response.status_code == 403


@pytest.mark.parametrize(("target", "lands"), [("/ui/audit?agent=x", "/ui/audit?agent=x"), ("//evil.example/", "/ui/")])
async def test_sign_in_returns_only_to_dashboard_pages(dash: Dash, target: str, lands: str) -> None:
    http = dash.client()
    form = await http.get("/ui/login", params={"next": target})
    login_token = LOGIN.search(form.text)
    assert login_token
    response = await http.post(
        "/ui/login", data={"token": dash.secrets[Role.ADMIN], "login_token": login_token[1], "next": target}
    )
    assert response.headers["location"] == lands


async def test_sign_out_ends_the_session_in_this_browser(dash: Dash) -> None:
    http, csrf = await dash.signed_in(Role.VIEWER)
    response = await http.post("/ui/logout", data={"csrf_token": csrf})
    assert response.status_code == 303
    assert (await http.get("/ui/")).status_code == 303


async def test_the_session_key_is_made_on_first_use_and_private(dash: Dash) -> None:
    key = dash.services.secret_file
    assert not key.exists()  # a gateway that never serves a page (`bastion wrap`) writes no key
    await dash.signed_in(Role.VIEWER)
    assert key.stat().st_mode & 0o777 == 0o600
    assert BASE.startswith("http://")


async def test_every_route_but_sign_in_and_static_files_needs_a_session(dash: Dash) -> None:
    """Walks the app's own route table, so a route added later cannot skip the guard."""
    starlette_app = dash.dashboard.app.app  # inside the SecurityHeaders middleware
    [mount] = [route for route in starlette_app.routes if isinstance(route, Mount)]
    assert [r.path for r in starlette_app.routes if not isinstance(r, Mount)] == ["/favicon.ico"]  # the only public one
    checked = 0
    http = dash.client()
    for route in mount.routes:
        if not isinstance(route, Route) or route.path == "/login":
            continue
        path = "/ui" + re.sub(r"\{(\w+)(:int)?\}", lambda m: "1" if m[2] else "x", route.path)
        for method in sorted(route.methods or ()):
            if method == "HEAD":
                continue
            response = await http.request(method, path)
            assert response.status_code in (303, 401), (method, path, response.status_code)
            if method == "POST":
                assert response.status_code == 401
            checked += 1
    assert checked >= 15

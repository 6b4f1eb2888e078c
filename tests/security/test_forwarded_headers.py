"""A client cannot forge the address it is audited under, nor the scheme the dashboard sees.

`X-Forwarded-For` / `X-Forwarded-Proto` are believed only from a peer listed in
`trusted_proxies` (default: none). Each gateway here is real and reached over loopback, so
the TCP peer is always 127.0.0.1; the configurations differ in whether that peer is trusted.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import httpx2
import pytest

from bastion.web.session import LOGIN_COOKIE
from tests.security.front_door import FrontDoor, front_door

pytestmark = pytest.mark.e2e

SPOOFED = "203.0.113.9"
BAD_AGENT_TOKEN = "Bearer bst_not-a-real-token"
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
PING = b'{"jsonrpc": "2.0", "id": 1, "method": "ping"}'


@dataclass(frozen=True)
class Setup:
    trusted_proxies: list[str]
    environment: str | None
    """FORWARDED_ALLOW_IPS while the gateway starts (None: unset)."""
    loopback_trusted: bool
    """Whether the test's own connections (from 127.0.0.1) come from a trusted proxy."""


SETUPS = {
    "default": Setup([], None, loopback_trusted=False),
    "default, FORWARDED_ALLOW_IPS=*": Setup([], "*", loopback_trusted=False),
    "another proxy trusted": Setup(["192.0.2.1", "10.0.0.0/8"], "*", loopback_trusted=False),
    "loopback trusted": Setup(["127.0.0.1", "::1"], None, loopback_trusted=True),
}


@dataclass
class Gateway:
    door: FrontDoor
    trusted: bool


@pytest.fixture(scope="module", params=list(SETUPS))
def gateway(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    setup = SETUPS[request.param]
    with pytest.MonkeyPatch.context() as environ:
        if setup.environment is None:
            environ.delenv("FORWARDED_ALLOW_IPS", raising=False)
        else:
            environ.setenv("FORWARDED_ALLOW_IPS", setup.environment)
        with front_door(tmp_path_factory.mktemp("forwarded"), trusted_proxies=setup.trusted_proxies) as door:
            yield Gateway(door, setup.loopback_trusted)


def last_auth_failure(door: FrontDoor, path: str) -> dict[str, Any]:
    return [e for e in door.events() if e["type"] == "auth.failure" and e["path"] == path][-1]


def new_window(door: FrontDoor) -> None:
    """Close the refusals' coalescing windows: the next failure is recorded at once, in full."""
    door.portal.call(partial(door.gateway.refusals.flush, everything=True))


@pytest.mark.parametrize(
    ("forwarded_for", "believed"),
    [
        (SPOOFED, SPOOFED),
        (f"{SPOOFED}, {SPOOFED}", SPOOFED),
        # Each proxy appends the peer it saw: the right-most entry not itself trusted is the client.
        (f"198.51.100.7, {SPOOFED}", SPOOFED),
        (f"{SPOOFED}, 127.0.0.1", SPOOFED),
    ],
)
def test_a_bad_token_is_audited_under_the_real_peer_unless_it_is_a_trusted_proxy(
    gateway: Gateway, forwarded_for: str, believed: str
) -> None:
    door = gateway.door
    new_window(door)
    headers = {**MCP_HEADERS, "Authorization": BAD_AGENT_TOKEN, "X-Forwarded-For": forwarded_for}
    response = httpx2.post(f"{door.base_url}/servers/time/mcp", content=PING, headers=headers, timeout=30)
    assert response.status_code == 401, response.text
    event = last_auth_failure(door, "/servers/time/mcp")
    assert event["client"] == (believed if gateway.trusted else "127.0.0.1")


def login_cookie(response: httpx2.Response) -> str:
    """The sign-in page's login cookie, as its `Set-Cookie` header says it."""
    return next(c for c in response.headers.get_list("set-cookie") if c.startswith(f"{LOGIN_COOKIE}="))


def test_the_dashboard_sees_https_only_from_a_trusted_proxy(gateway: Gateway) -> None:
    url = f"{gateway.door.base_url}/ui/login"
    plain = httpx2.get(url, timeout=30)
    forwarded = httpx2.get(url, headers={"X-Forwarded-Proto": "https"}, timeout=30)
    assert (plain.status_code, forwarded.status_code) == (200, 200)
    assert "secure" not in login_cookie(plain).lower()
    assert ("secure" in login_cookie(forwarded).lower()) is gateway.trusted


def sign_in(door: FrontDoor, **headers: str) -> httpx2.Response:
    """A sign-in with a wrong admin token, from a fresh sign-in form."""
    page = httpx2.get(f"{door.base_url}/ui/login", timeout=30)
    token = re.search(r'name="login_token" value="([^"]+)"', page.text)
    assert token is not None, page.text
    form = {"login_token": token.group(1), "token": "bsa_not-a-real-token", "next": "/ui/"}
    cookie = login_cookie(page).split(";", 1)[0]
    return httpx2.post(f"{door.base_url}/ui/login", data=form, headers={"Cookie": cookie, **headers}, timeout=30)


def test_a_failed_sign_in_is_audited_under_the_real_peer_unless_it_is_a_trusted_proxy(gateway: Gateway) -> None:
    door = gateway.door
    response = sign_in(door, **{"X-Forwarded-For": SPOOFED})
    assert response.status_code == 401, response.text
    event = last_auth_failure(door, "/ui/login")
    assert event["client"] == (SPOOFED if gateway.trusted else "127.0.0.1")


def test_the_same_origin_check_follows_the_scheme_only_a_trusted_proxy_may_set(gateway: Gateway) -> None:
    # A page served over https (per the proxy) posts with an https Origin.
    https_origin = gateway.door.base_url.replace("http://", "https://")
    response = sign_in(gateway.door, **{"Origin": https_origin, "X-Forwarded-Proto": "https"})
    if gateway.trusted:
        assert response.status_code == 401, response.text  # same origin; the token is what is wrong
    else:
        assert response.status_code == 403, response.text
        assert "cross-site" in response.text


def test_the_advertised_base_url_never_comes_from_request_headers(gateway: Gateway) -> None:
    door = gateway.door
    headers = {**MCP_HEADERS, "X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example"}
    response = httpx2.post(f"{door.base_url}/servers/time/mcp", content=PING, headers=headers, timeout=30)
    assert response.status_code == 401, response.text
    expected = f"{door.base_url}/.well-known/oauth-protected-resource/servers/time/mcp"
    assert f'resource_metadata="{expected}"' in response.headers["www-authenticate"]

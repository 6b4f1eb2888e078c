"""Bastion's Host/Origin/Content-Type checks answer as the SDK's `TransportSecurityMiddleware` does.

The relay runs `HostChecks` on every request (the SDK's middleware would import the SDK at
start); on generated headers both must accept and refuse alike, with the same status and body.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from mcp.server.transport_security import TransportSecurityMiddleware
from starlette.requests import Request

from bastion.relay.host_checks import transport_security

pytestmark = pytest.mark.anyio

HOSTS = [
    None,
    "",
    "127.0.0.1:8080",
    "127.0.0.1",
    "localhost:1",
    "LOCALHOST:1",
    "[::1]:9",
    "evil.example:80",
    "127.0.0.1.evil:80",
    "bastion.example.com",
    "bastion.example.com:443",
    "10.0.0.5:7",
    "10.0.0.5",
]
ORIGINS = [
    None,
    "",
    "http://127.0.0.1:8080",
    "https://localhost:3",
    "http://localhost",
    "https://bastion.example.com",
    "https://bastion.example.com:8443",
    "http://evil.example",
    "null",
    "http://10.0.0.5:1",
]
CONTENT_TYPES = [None, "application/json", "Application/JSON; charset=utf-8", "text/plain", "application/jsonx", ""]
SETTINGS = [
    ("127.0.0.1", None),
    ("10.0.0.5", "https://bastion.example.com"),
    ("0.0.0.0", None),
    ("::", "https://bastion.example.com/"),
]


def scope_with(host: str | None, origin: str | None, content_type: str | None) -> dict[str, Any]:
    headers = [
        (name, value.encode("latin-1"))
        for name, value in ((b"host", host), (b"origin", origin), (b"content-type", content_type))
        if value is not None
    ]
    return {"type": "http", "method": "POST", "path": "/mcp", "headers": headers, "query_string": b""}


async def test_the_checks_answer_as_the_sdk_middleware_on_generated_headers() -> None:
    compared = 0
    for (bind, public_url), is_post in itertools.product(SETTINGS, (True, False)):
        ours = transport_security(bind, public_url)
        sdk = TransportSecurityMiddleware(ours.sdk_settings())
        for host, origin, content_type in itertools.product(HOSTS, ORIGINS, CONTENT_TYPES):
            scope = scope_with(host, origin, content_type)
            theirs = await sdk.validate_request(Request(scope), is_post=is_post)
            mine = ours.refusal(scope, is_post=is_post)
            case = (bind, public_url, is_post, host, origin, content_type)
            if theirs is None:
                assert mine is None, case
            else:
                assert mine is not None, case
                assert (mine.status_code, mine.body) == (theirs.status_code, theirs.body), case
            compared += 1
    assert compared == len(SETTINGS) * 2 * len(HOSTS) * len(ORIGINS) * len(CONTENT_TYPES)


def test_a_wildcard_bind_turns_the_host_checks_off_but_not_the_content_type_check() -> None:
    checks = transport_security("0.0.0.0", None)
    assert checks.refusal(scope_with("evil.example", "http://evil.example", "application/json"), is_post=True) is None
    refused = checks.refusal(scope_with("evil.example", None, "text/plain"), is_post=True)
    assert refused is not None
    assert refused.status_code == 400

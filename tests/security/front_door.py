"""A real gateway served from a background thread, for the adversarial tests to hit over HTTP.

The gateway runs in its own event loop (an anyio blocking portal), so a module-scoped fixture
can share one gateway between many plain, parametrized test functions.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from anyio.from_thread import BlockingPortal, start_blocking_portal

from bastion.admin.tokens import Role
from bastion.audit.chain import decode_row
from bastion.audit.export import event_record
from bastion.audit.query import EventQuery
from bastion.auth.sqlite_tokens import SqliteTokenStore
from bastion.config import load_config
from bastion.gateway.gateway import Gateway
from bastion.stores import TOKENS_DB
from tests.e2e.conftest import VENV_BIN, write_config
from tests.e2e.inprocess import serving

JWT_SECRET = "a-test-secret-that-is-long-enough-for-hs256!"
JWT_ISSUER = "https://idp.example.invalid/"


def mint(
    sub: str,
    *,
    servers: list[str] | None = None,
    ttl: float = 300,
    audience: str = "bastion",
    key: str = JWT_SECRET,
    algorithm: str = "HS256",
) -> str:
    """A JWT as the configured identity provider would issue it (or not quite, by the arguments)."""
    claims: dict[str, object] = {"sub": sub, "iss": JWT_ISSUER, "aud": audience, "exp": int(time.time() + ttl)}
    if servers is not None:
        claims["bastion_servers"] = servers
    if algorithm == "none":
        return jwt.encode(claims, None, algorithm="none")
    return jwt.encode(claims, key, algorithm=algorithm)


@dataclass
class FrontDoor:
    """The serving gateway, its base URL and a credential of every kind."""

    gateway: Gateway
    portal: BlockingPortal
    base_url: str
    credentials: dict[str, str | None] = field(default_factory=dict)
    """Credential kind -> the `Authorization` header value (None: no header)."""

    def events(self) -> list[dict[str, Any]]:
        """Every audit event written so far (after the writer's next commit), oldest first."""

        self.portal.call(self.gateway.audit.flush)
        return stored_events(self.gateway)


def stored_events(gateway: Gateway) -> list[dict[str, Any]]:
    """Every audit event in `gateway`'s store, oldest first (also once it has stopped)."""
    return [event_record(decode_row(row)) for row in gateway.audit.rows(EventQuery(), newest_first=False)]


def _credentials(gateway: Gateway) -> dict[str, str | None]:
    tokens, admin = gateway.tokens, gateway.admin_tokens
    assert tokens is not None
    assert admin is not None
    _, agent = tokens.create("matrix-agent")
    _, scoped = tokens.create("scoped-agent", servers=["time2"])
    revoked_info, revoked = tokens.create("revoked-agent")
    tokens.revoke(revoked_info.id)
    # Issued an hour ago for a minute: made through a second store whose clock is behind.
    an_hour_ago = SqliteTokenStore(gateway.config.data_dir / TOKENS_DB, clock=lambda: time.time() - 3600)
    _, expired = an_hour_ago.create("expired-agent", expires_in=60)
    an_hour_ago.close()
    roles = {role.label: admin.create(f"{role.label}-person", role)[1] for role in Role}
    revoked_admin_identity, revoked_admin = admin.create("former-admin", Role.ADMIN)
    admin.revoke(revoked_admin_identity.id)
    bearer = {
        "malformed": "not-a-token",
        "agent": agent,
        "scoped_agent": scoped,
        "revoked": revoked,
        "expired": expired,
        "jwt": mint("jwt-agent", servers=["time", "time2", "counter"]),
        "jwt_scoped": mint("jwt-scoped", servers=["time2"]),
        "jwt_alg_none": mint("jwt-none", servers=["time"], algorithm="none"),
        "jwt_wrong_key": mint("jwt-forged", servers=["time"], key="another-secret-that-is-long-enough-for-hs"),
        "jwt_expired": mint("jwt-late", servers=["time"], ttl=-600),
        "jwt_wrong_audience": mint("jwt-elsewhere", servers=["time"], audience="other"),
        "revoked_admin": revoked_admin,
        "status_key": gateway.status_key,
        **roles,
    }
    headers: dict[str, str | None] = {"none": None, "basic": "Basic dXNlcjpwYXNz"}
    headers.update({kind: f"Bearer {value}" for kind, value in bearer.items()})
    return headers


@contextmanager
def front_door(
    folder: Path,
    gateway_options: dict[str, Any] | None = None,
    more_servers: dict[str, Any] | None = None,
    **extra: Any,
) -> Iterator[FrontDoor]:
    """A gateway with two unsandboxed time servers, JWT agents and every kind of credential.

    `extra`: more configuration keys; `gateway_options`: keyword arguments for `Gateway`."""
    server = {"command": str(VENV_BIN / "mcp-server-time"), "sandbox": {"enabled": False}}
    servers = {"time": server, "time2": server, **(more_servers or {})}
    jwt_config = {"issuer": JWT_ISSUER, "audience": "bastion", "secret": JWT_SECRET, "servers_claim": "bastion_servers"}
    config = load_config(write_config(folder, servers, auth={"jwt": jwt_config}, **extra))
    gateway = Gateway(config, **(gateway_options or {}))
    with start_blocking_portal() as portal, portal.wrap_async_context_manager(serving(gateway)):
        door = FrontDoor(gateway, portal, gateway.base_url)
        door.credentials = portal.call(_credentials, gateway)
        yield door

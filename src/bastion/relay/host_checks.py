"""DNS-rebinding protection for the HTTP transports: the Host and Origin values Bastion is reached by.

Bastion's own equivalent of the SDK's `TransportSecurityMiddleware` (the relay runs it on every
request; the SDK's transports, built on first use, get the same settings as the SDK's model:
`sdk_settings`). Same checks in the same order, same answers: a POST without a JSON
Content-Type is 400; with the protection on, a missing or unlisted Host is 421 and an unlisted
Origin 403 (no Origin: same-origin, accepted). An entry ending in `:*` allows any port.
`tests/unit/relay/test_host_checks.py` compares the two on generated headers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from starlette.responses import Response
from starlette.types import Scope

from bastion.relay.asgi_headers import headers_named

if TYPE_CHECKING:
    from mcp.server.transport_security import TransportSecuritySettings

logger = logging.getLogger(__name__)

_CHECKED = frozenset((b"content-type", b"host", b"origin"))


@dataclass(frozen=True, slots=True)
class HostChecks:
    """Which Host and Origin values are accepted (`enabled` False: any, as on a wildcard bind)."""

    enabled: bool = True
    allowed_hosts: tuple[str, ...] = field(default=())
    allowed_origins: tuple[str, ...] = field(default=())

    def refusal(self, scope: Scope, *, is_post: bool) -> Response | None:
        """The answer refusing this request, or None when it passes."""
        headers = headers_named(scope, _CHECKED)
        if is_post:
            content_type = headers.get(b"content-type")
            if content_type is None or not content_type.lower().startswith("application/json"):
                return Response("Invalid Content-Type header", status_code=400)
        if not self.enabled:
            return None
        host = headers.get(b"host")
        if not host or not _allowed(host, self.allowed_hosts):
            logger.warning("Invalid Host header: %s", host)
            return Response("Invalid Host header", status_code=421)
        origin = headers.get(b"origin")
        if origin and not _allowed(origin, self.allowed_origins):
            logger.warning("Invalid Origin header: %s", origin)
            return Response("Invalid Origin header", status_code=403)
        return None

    def sdk_settings(self) -> TransportSecuritySettings:
        """The same settings as the SDK's model, for its transports (imports the SDK)."""
        from mcp.server.transport_security import TransportSecuritySettings

        return TransportSecuritySettings(
            enable_dns_rebinding_protection=self.enabled,
            allowed_hosts=list(self.allowed_hosts),
            allowed_origins=list(self.allowed_origins),
        )


def _allowed(value: str, allowed: tuple[str, ...]) -> bool:
    if value in allowed:
        return True
    return any(entry.endswith(":*") and value.startswith(entry[:-2] + ":") for entry in allowed)


def transport_security(host: str, public_url: str | None) -> HostChecks:
    """Accept only the Host and Origin values Bastion is reached by (any, on a wildcard bind)."""
    hosts = ["127.0.0.1:*", "localhost:*", "[::1]:*", f"{host}:*"]
    origins = [f"http://{h}" for h in hosts] + [f"https://{h}" for h in hosts]
    if public_url:
        from urllib.parse import urlsplit

        netloc = urlsplit(public_url).netloc
        hosts += [netloc, f"{netloc}:*"]
        origins.append(public_url.rstrip("/"))
    wildcard = host in ("0.0.0.0", "::", "")
    return HostChecks(enabled=not wildcard, allowed_hosts=tuple(hosts), allowed_origins=tuple(origins))

"""Bearer authentication for the HTTP front door, with RFC 9728 protected-resource metadata.

Every request to a server endpoint must carry `Authorization: Bearer <token>`. A missing,
malformed, unknown, revoked or expired credential gets 401 with a `WWW-Authenticate`
header pointing at the resource metadata, so OAuth-aware agents can discover where to
get a token. The agent's credential never travels further than this module: upstream
requests are made by Bastion's own session, with the server's configured headers.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from starlette.authentication import AuthCredentials
from starlette.responses import Response
from starlette.types import Scope

from bastion.model import Principal


def resource_url(base_url: str, server: str | None) -> str:
    """The protected resource an endpoint belongs to: the server's Streamable HTTP URL (None: `/mcp`)."""
    path = "/mcp" if server is None else f"/servers/{server}/mcp"
    return f"{base_url.rstrip('/')}{path}"


def resource_metadata_url(base_url: str, server: str | None) -> str:
    """Where RFC 9728 metadata for `server` is served (the well-known path plus the resource path)."""
    path = "/mcp" if server is None else f"/servers/{server}/mcp"
    return f"{base_url.rstrip('/')}/.well-known/oauth-protected-resource{path}"


def unauthorized(metadata_url: str, description: str) -> Response:
    """401 with an RFC 6750 / RFC 9728 challenge."""
    challenge = (
        f'Bearer error="invalid_token", error_description="{_quote(description)}", resource_metadata="{metadata_url}"'
    )
    body = {"error": "invalid_token", "error_description": description}
    return Response(
        json.dumps(body), status_code=401, media_type="application/json", headers={"WWW-Authenticate": challenge}
    )


def forbidden(description: str) -> Response:
    body = {"error": "insufficient_scope", "error_description": description}
    challenge = f'Bearer error="insufficient_scope", error_description="{_quote(description)}"'
    return Response(
        json.dumps(body), status_code=403, media_type="application/json", headers={"WWW-Authenticate": challenge}
    )


def protected_resource_metadata(base_url: str, server: str | None, authorization_servers: Sequence[str]) -> Response:
    """The RFC 9728 document for one server endpoint (None: the aggregate endpoint `/mcp`)."""
    document: dict[str, object] = {
        "resource": resource_url(base_url, server),
        "bearer_methods_supported": ["header"],
        "resource_name": f"Bastion: {server or 'every server'}",
    }
    if authorization_servers:
        document["authorization_servers"] = list(authorization_servers)
    return Response(json.dumps(document), media_type="application/json")


def attach_principal(scope: Scope, principal: Principal) -> None:
    """Record who is calling, in Bastion's own key (the relay binds its sessions to the credential)."""
    scope["auth"] = _NO_SCOPES
    scope["bastion.principal"] = principal


_NO_SCOPES = AuthCredentials([])


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')

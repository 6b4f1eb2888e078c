"""Who is calling, in the form the SDK's server transports bind their sessions to.

Bastion's front door records the caller under `bastion.principal`; the relay binds its own
sessions to the credential. Before a request goes to one of the SDK's transports (the
reference path, and what the relay hands on), `bind_sdk_user` adds the SDK's `AuthenticatedUser`
(importing the SDK then, not at start).
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from starlette.types import Scope

from bastion.model import Principal

if TYPE_CHECKING:
    from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser


def bind_sdk_user(scope: Scope) -> None:
    """Before a request goes to one of the SDK's transports: the caller in the form it binds sessions to.

    The SDK ties each session to (client_id, issuer, subject); using the credential id as
    client_id means a session opened with one token cannot be used with another. Every hand-off
    to the SDK's server transports calls this (it imports the SDK; the relay never needs it).
    A request with no authenticated principal gets no user (the SDK then binds to none and the
    front door never hands such a request on).
    """
    principal = scope.get("bastion.principal")
    if isinstance(principal, Principal):
        scope["user"] = _session_owner(principal.credential_id or principal.agent, principal.agent)


@lru_cache(maxsize=4096)
def _session_owner(client_id: str, subject: str) -> AuthenticatedUser:
    """The SDK's user for one (credential, agent): made once, not on every request.

    It holds no secret (the token field is empty) and the SDK only reads it."""
    from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
    from mcp.server.auth.provider import AccessToken

    token = AccessToken(token="", client_id=client_id, scopes=[])
    token.subject = subject
    return AuthenticatedUser(token)

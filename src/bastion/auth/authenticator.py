"""The front door's credential check: `Authorization: Bearer ...` to a `Principal`."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

from bastion.auth.tokens import TOKEN_PREFIX, TokenStore
from bastion.model import Principal

if TYPE_CHECKING:  # the verifier (and PyJWT) is imported only when JWT agents are configured
    from bastion.auth.jwt_auth import JwtVerifier

_BEARER_RE = re.compile(r"\s*bearer +([A-Za-z0-9\-._~+/]+=*)\s*", re.IGNORECASE)


def bearer_token(authorization_header: str | None) -> str | None:
    """The credential of a `Bearer` authorization header (scheme case-insensitive), else None."""
    if not authorization_header:
        return None
    match = _BEARER_RE.fullmatch(authorization_header)
    return match[1] if match else None


def _intersect(a: frozenset[str] | None, b: frozenset[str] | None) -> frozenset[str] | None:
    if a is None:
        return b
    return a if b is None else a & b


class Authenticator:
    """Turns an authorization header into a principal, or None when it must be refused.

    Bastion tokens (`bst_...`) are checked by the token store, anything else by the JWT
    verifier when one is configured. A non-empty `agent_servers` (the config's `agents:`)
    is an allowlist: unlisted agents are refused, listed ones are limited to the servers
    both the credential and the config allow (None means no limit).
    """

    def __init__(
        self,
        tokens: TokenStore,
        jwt: JwtVerifier | None,
        agent_servers: Mapping[str, frozenset[str] | None] | None = None,
    ) -> None:
        self._tokens = tokens
        self._jwt = jwt
        self._agent_servers = agent_servers or None

    async def authenticate(self, authorization_header: str | None) -> Principal | None:
        """The principal behind `authorization_header`; None if missing, malformed or invalid."""
        token = bearer_token(authorization_header)
        if token is None:
            return None
        if token.startswith(TOKEN_PREFIX):
            principal = self._tokens.verify(token)
        elif self._jwt is not None:
            principal = await self._jwt.verify(token)
        else:
            return None
        if principal is None or self._agent_servers is None:
            return principal
        if principal.agent not in self._agent_servers:
            return None
        servers = _intersect(principal.servers, self._agent_servers[principal.agent])
        return dataclasses.replace(principal, servers=servers)

"""`GET /metrics`: the Prometheus text format, for an admin token of any role.

Prometheus sends `authorization: Bearer ...` (its `authorization` scrape setting). No
credential: 401; an agent's credential: 403 (agents do not read the gateway's figures).
`metrics.listen` serves the same page without authentication on an address of its own,
meant for a loopback or pod-internal port.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

import anyio.to_thread
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

AdminVerifier = Callable[[str], bool]
"""Whether a bearer token is a live admin token (any role)."""
AgentAuthenticator = Callable[[str], Awaitable[object | None]]
"""The agent credential an Authorization header carries, or None."""


class MetricsEndpoint:
    """The ASGI endpoint; `admin=None` serves without authentication (the `metrics.listen` listener)."""

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        admin: AdminVerifier | None = None,
        agents: AgentAuthenticator | None = None,
    ) -> None:
        self.registry = registry
        self.admin = admin
        self.agents = agents

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] not in ("GET", "HEAD"):
            await _error(405, "method_not_allowed", "use GET", {"Allow": "GET, HEAD"})(scope, receive, send)
            return
        if self.admin is not None:
            refusal = await self._refusal(Headers(scope=scope).get("authorization"))
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        # Collecting reads the stores (approvals pending): off the event loop.
        body = await anyio.to_thread.run_sync(generate_latest, self.registry)
        await Response(body, 200, media_type=CONTENT_TYPE_LATEST)(scope, receive, send)

    async def _refusal(self, header: str | None) -> Response | None:
        assert self.admin is not None
        token = header[7:].strip() if header and header[:7].lower() == "bearer " else None
        if token and self.admin(token):
            return None
        if header is not None and self.agents is not None and await self.agents(header) is not None:
            return _error(403, "forbidden", "agent credentials cannot read metrics; use an admin token")
        description = "missing bearer token" if header is None else "invalid or revoked admin token"
        return _error(401, "unauthorized", description, {"WWW-Authenticate": 'Bearer realm="bastion-admin"'})


def _error(status: int, error: str, description: str, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps({"error": error, "error_description": description})
    return Response(body, status, headers=headers, media_type="application/json")


class MetricsOnlyApp:
    """The app of the `metrics.listen` listener: `/metrics`, and 404 for anything else."""

    def __init__(self, endpoint: MetricsEndpoint) -> None:
        self.endpoint = endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            return
        if scope["type"] != "http":
            return
        if scope["path"] == "/metrics":
            await self.endpoint(scope, receive, send)
            return
        await _error(404, "not_found", "this listener serves only /metrics")(scope, receive, send)

"""The HTTP front door: one ASGI app serving every configured server to authenticated agents.

Routes:
- `/servers/<name>/mcp`: Streamable HTTP (both protocol eras), for a server or a virtual server;
- `/servers/<name>/sse` and `/servers/<name>/messages/`: the legacy HTTP+SSE transport;
- `/mcp`, `/sse` and `/messages/`: the aggregate endpoint, every server the credential reaches
  (bastion.proxy.aggregate);
- `/.well-known/oauth-protected-resource/servers/<name>/mcp` (and `.../mcp`): RFC 9728 metadata;
- `/healthz` (the process is up) and `/readyz` (store writable, upstreams started; only
  `{"ready": bool}` but to an admin token or the status key, see `status_key`);
- `/metrics`: Prometheus metrics, for admin tokens (bastion.observability);
- `/admin/api/...`: the admin API (bastion.admin.api), for admin tokens only;
- `/ui/...`: the dashboard (bastion.web), for people signed in with an admin token (and its `/favicon.ico`).

Order of refusals on a server path: 401 (no valid credential) before 404 (no such server)
before 403 (the credential does not reach that server) before 429 (over
`limits.requests_per_agent`, with Retry-After), so nothing about the configured
servers is revealed to an unauthenticated caller. For the same reason the public RFC 9728
documents are served for any well-formed name, and `/readyz` details (server names and
states) go only to an admin token or the gateway's status key, not to any caller on this
host (a neighbour on the host is a stranger too).
"""

from __future__ import annotations

import json
import logging
import math
import time
from functools import cached_property
from typing import TYPE_CHECKING, Any

from starlette.responses import JSONResponse, Response
from starlette.types import Message, Receive, Scope, Send

from bastion.config import SERVER_NAME
from bastion.front.http_auth import (
    attach_principal,
    forbidden,
    protected_resource_metadata,
    resource_metadata_url,
    unauthorized,
)
from bastion.model import Principal
from bastion.proxy.aggregate import AggregateServer
from bastion.proxy.kept_manager import KeptSessionManager
from bastion.proxy.proxy import ProxyServer
from bastion.proxy.sdk_user import bind_sdk_user
from bastion.relay.aggregate import AggregateRelay
from bastion.relay.asgi_headers import header as request_header
from bastion.relay.front_checks import (
    Refusal,
    duplicate_id,
    json_rpc_error,
    judge,
    read_body,
    replay,
    sdk_refusal_reason,
    too_large,
)
from bastion.relay.host_checks import HostChecks
from bastion.relay.host_checks import transport_security as transport_security
from bastion.relay.http_front import RelayHttpEndpoint
from bastion.relay.relay import Relay
from bastion.relay.sse_front import RelaySseEndpoint

if TYPE_CHECKING:
    from mcp.server.sse import SseServerTransport
    from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

if TYPE_CHECKING:
    from bastion.front.front_door_services import FrontDoorServices

logger = logging.getLogger(__name__)

_METADATA_PREFIX = "/.well-known/oauth-protected-resource/servers/"
_AGGREGATE_METADATA = ("/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource/sse")
_AGGREGATE_PATHS = {"/mcp": "mcp", "/sse": "sse", "/messages/": "messages/", "/messages": "messages"}

ROUTES: tuple[str, ...] = (
    "/servers/{name}/mcp",
    "/servers/{name}/sse",
    "/servers/{name}/messages/",
    "/.well-known/oauth-protected-resource/servers/{name}/mcp",
    "/.well-known/oauth-protected-resource/servers/{name}/sse",
    "/mcp",
    "/sse",
    "/messages/",
    "/.well-known/oauth-protected-resource/mcp",
    "/healthz",
    "/readyz",
    "/metrics",
    "/admin/api/...",
    "/ui/...",
)
"""Every path `GatewayApp` serves (`...`: an app of its own, with its own routes). The auth
matrix (tests/security/test_auth_matrix.py) has a row for each: add one with a new route."""
AGGREGATE_NAME = "/mcp"
"""What refusals and rate-limit reports name as the server of a request to the aggregate endpoint."""


class ServerEndpoint:
    """The transports serving one proxy server (or an aggregate: `/mcp`, a virtual server) over HTTP.

    Bastion's relay (`relay`, `relay_sse`) when it is on; the SDK's transports (the Streamable
    HTTP session manager, `sse`) are built on first use: under the relay only a 2026-07-28
    request it does not serve itself reaches them, so an idle gateway has not imported the SDK."""

    def __init__(
        self,
        server: ProxyServer | AggregateServer,
        *,
        max_body_bytes: int,
        security: HostChecks,
        relay: bool = False,
    ) -> None:
        self.server = server
        self.max_body_bytes = max_body_bytes
        self.security = security
        name = server.upstream.name if isinstance(server, ProxyServer) else server.virtual or AGGREGATE_NAME
        self.manager = KeptSessionManager(name, self._sdk_manager)
        aggregate = isinstance(server, AggregateServer) and server.virtual is None
        messages = "/messages/" if aggregate else f"/servers/{name}/messages/"
        self.messages_path = messages
        self.relay: RelayHttpEndpoint | None = None
        """Bastion's own relay, serving handshake-era Streamable HTTP here (None: the SDK's stack serves)."""
        self.relay_sse: RelaySseEndpoint | None = None
        """The relay's legacy HTTP+SSE (None: the SDK's `SseServerTransport` serves)."""
        if relay:
            served = Relay(server, server.recorder) if isinstance(server, ProxyServer) else AggregateRelay(server)
            self.relay = RelayHttpEndpoint(served, self.manager, security)
            self.relay_sse = RelaySseEndpoint(served, messages, security)

    def _sdk_manager(self) -> StreamableHTTPSessionManager:
        from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

        return StreamableHTTPSessionManager(
            app=self.server.sdk,
            security_settings=self.security.sdk_settings(),
            max_request_body_size=self.max_body_bytes,
        )

    @cached_property
    def sse(self) -> SseServerTransport:
        """The SDK's legacy HTTP+SSE transport (`BASTION_RELAY=0`), built on first use."""
        from mcp.server.sse import SseServerTransport

        settings = self.security.sdk_settings()
        limit = self.max_body_bytes
        return SseServerTransport(self.messages_path, security_settings=settings, max_request_body_size=limit)

    async def serve_sse(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.relay_sse is not None:
            await self.relay_sse.connect(scope, receive, send)
            return
        from mcp.server.runner import serve_dual_era_loop

        bind_sdk_user(scope)
        try:
            async with self.sse.connect_sse(scope, receive, send) as (read, write):
                await serve_dual_era_loop(self.server.sdk, read, write, lifespan_state={})
        except ValueError:
            return  # connect_sse already answered (request validation failed)

    async def sdk_sse_post(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A message for a session of the SDK's SSE transport."""
        bind_sdk_user(scope)
        await self.sse.handle_post_message(scope, receive, send)


class GatewayApp:
    """The ASGI application. Built by `Gateway`, which owns the endpoints' lifecycles and
    passes itself in as the `FrontDoorServices` the routes use."""

    def __init__(
        self,
        gateway: FrontDoorServices,
        endpoints: dict[str, ServerEndpoint],
        aggregate: ServerEndpoint | None = None,
    ) -> None:
        self.gateway = gateway
        self.endpoints = endpoints
        """By name in `/servers/<name>/`: the configured servers and the virtual servers."""
        self.aggregate = aggregate
        """`/mcp`, `/sse` and `/messages/`."""
        self._ids_in_flight: set[tuple[str, str, str, str]] = set()
        """(server, credential, Mcp-Session-Id, request id) of each Streamable HTTP request being served."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _refuse_lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        observability = self.gateway.observability
        if observability.listener is not None and observability.serves_listener(scope):
            await observability.listener(scope, receive, send)
            return
        try:
            if path.startswith("/servers/"):
                await self._server_route(path, scope, receive, send)
            elif path in _AGGREGATE_PATHS and self.aggregate is not None:
                await self._aggregate_route(_AGGREGATE_PATHS[path], scope, receive, send)
            elif path in _AGGREGATE_METADATA:
                issuers = self.gateway.authorization_servers()
                await protected_resource_metadata(self.gateway.base_url, None, issuers)(scope, receive, send)
            elif path == "/healthz":
                await JSONResponse({"status": "ok"})(scope, receive, send)
            elif path == "/readyz":
                await self._readyz(scope, receive, send)
            elif (path == "/admin/api" or path.startswith("/admin/api/")) and self.gateway.admin_api is not None:
                await self.gateway.admin_api(scope, receive, send)
            elif (path in ("/ui", "/favicon.ico") or path.startswith("/ui/")) and self.gateway.dashboard is not None:
                await self.gateway.dashboard(scope, receive, send)
            elif path == "/metrics" and observability.endpoint is not None:
                await observability.endpoint(scope, receive, send)
            elif path.startswith(_METADATA_PREFIX):
                await self._metadata(path, scope, receive, send)
            else:
                where = "no such endpoint; every server is at /mcp, each at /servers/<name>/mcp"
                await _not_found(where)(scope, receive, send)
        except Exception:
            logger.exception("error serving %s", path)
            raise

    def _audit_refusal(self, scope: Scope, status: int, reason: str, agent: str | None, server: str | None) -> None:
        """Record an `auth.failure` event (coalesced under floods: see `refusals`)."""
        path = str(scope["path"])
        client = _client_of(scope)
        self.gateway.refusals.auth_failed(reason, status, agent=agent, server=server, path=path, client=client)

    async def _authenticate(self, scope: Scope, receive: Receive, send: Send, server: str | None) -> Principal | None:
        """The caller's principal; None once it has been answered 401 (audited, with the RFC 9728 pointer)."""
        header = request_header(scope, b"authorization")
        began = time.perf_counter()
        principal = await self.gateway.authenticator.authenticate(header)
        scope["bastion.auth_seconds"] = time.perf_counter() - began
        if principal is None:
            description = "missing bearer token" if header is None else "invalid, revoked or expired credential"
            self._audit_refusal(scope, 401, description, None, None)
            metadata_url = resource_metadata_url(self.gateway.base_url, server)
            await unauthorized(metadata_url, description)(scope, receive, send)
        return principal

    async def _server_route(self, path: str, scope: Scope, receive: Receive, send: Send) -> None:
        _, _, name, *rest = path.split("/", 3)
        suffix = rest[0] if rest else ""
        principal = await self._authenticate(scope, receive, send, name)
        if principal is None:
            return
        endpoint = self.endpoints.get(name)
        if endpoint is None:
            await _not_found(f"no server named {name!r}")(scope, receive, send)
            return
        if not principal.may_reach(name):
            self._audit_refusal(scope, 403, "the credential does not reach this server", principal.agent, name)
            await forbidden(f"agent {principal.agent!r} may not use server {name!r}")(scope, receive, send)
            return
        await self._serve(endpoint, suffix, scope, receive, send, principal, name)

    async def _aggregate_route(self, suffix: str, scope: Scope, receive: Receive, send: Send) -> None:
        """`/mcp`, `/sse`, `/messages/`: any valid credential; it sees the servers it reaches."""
        assert self.aggregate is not None
        principal = await self._authenticate(scope, receive, send, None)
        if principal is None:
            return
        await self._serve(self.aggregate, suffix, scope, receive, send, principal, AGGREGATE_NAME)

    async def _serve(
        self,
        endpoint: ServerEndpoint,
        suffix: str,
        scope: Scope,
        receive: Receive,
        send: Send,
        principal: Principal,
        name: str,
    ) -> None:
        """Serve an authenticated caller at `name`'s endpoint, within `limits.requests_per_agent`."""
        limits = self.gateway.limits
        if limits is not None and limits.request_rule is not None:
            refusal = await limits.check_request(principal, name)
            if refusal is not None:
                await _refused(refusal.status, refusal.retry_after, refusal.message)(scope, receive, send)
                return
        attach_principal(scope, principal)
        method = scope["method"]
        send = self._noting_refusals(scope, send, principal.agent, name)
        if method == "POST" and suffix in ("mcp", "messages", "messages/"):
            owner = principal.credential_id or principal.agent
            await self._post(endpoint, suffix, scope, receive, send, principal.agent, name, owner)
        elif suffix == "mcp":
            scope["bastion.transport"] = "streamable-http"
            if endpoint.relay is not None:
                await endpoint.relay.handle(scope, receive, send)
            else:
                await endpoint.manager.handle_request(scope, receive, send)
        elif suffix == "sse" and method == "GET":
            scope["bastion.transport"] = "sse"
            await endpoint.serve_sse(scope, receive, send)
        else:
            where = "/mcp and /sse" if name == AGGREGATE_NAME else f"/servers/{name}/mcp and /servers/{name}/sse"
            await _not_found(f"{name!r} is served at {where}")(scope, receive, send)

    async def _post(
        self,
        endpoint: ServerEndpoint,
        suffix: str,
        scope: Scope,
        receive: Receive,
        send: Send,
        agent: str,
        name: str,
        owner: str,
    ) -> None:
        """A JSON-RPC message: judged here (see `front_checks`), then replayed to the SDK transport.

        `owner` is the credential the session is bound to: ids in flight are tracked per
        credential too, so a request naming someone else's session cannot block their ids."""
        limit = self.gateway.config.max_body_bytes
        body = await read_body(receive, limit)
        if body is None:
            await self._refuse(too_large(limit), scope, receive, send, agent, name)
            return
        judged = judge(body)
        if isinstance(judged, Refusal):
            await self._refuse(judged, scope, receive, send, agent, name)
            return
        if suffix != "mcp":
            scope["bastion.transport"] = "sse"
            if endpoint.relay_sse is not None:
                await endpoint.relay_sse.post(scope, receive, send, judged.message)
            else:
                await endpoint.sdk_sse_post(scope, replay(body, receive), send)
            return
        scope["bastion.transport"] = "streamable-http"
        session = request_header(scope, b"mcp-session-id")
        key = (name, owner, session, judged.id_key) if session and judged.id_key else None
        if key is not None and key in self._ids_in_flight:
            await self._refuse(duplicate_id(judged.request_id), scope, receive, send, agent, name)
            return
        if key is not None:
            self._ids_in_flight.add(key)
        try:
            if endpoint.relay is not None:
                await endpoint.relay.post(scope, receive, send, body, judged.message)
            else:
                await endpoint.manager.handle_request(scope, replay(body, receive), send)
        finally:
            if key is not None:
                self._ids_in_flight.discard(key)

    async def _refuse(
        self, refusal: Refusal, scope: Scope, receive: Receive, send: Send, agent: str | None, server: str | None
    ) -> None:
        scope["bastion.refused"] = True
        self.gateway.refusals.refused(
            refusal.reason,
            refusal.status,
            agent=agent,
            server=server,
            path=str(scope["path"]),
            client=_client_of(scope),
            detail=refusal.message,
        )
        await json_rpc_error(refusal)(scope, receive, send)

    def _noting_refusals(self, scope: Scope, send: Send, agent: str, server: str) -> Send:
        """`send`, recording a `request.refused` event for a 4xx the SDK transport answers."""

        async def noting(message: Message) -> None:
            if message["type"] == "http.response.start" and not scope.get("bastion.refused"):
                status = int(message["status"])
                if 400 <= status < 500:
                    scope["bastion.refused"] = True
                    reason = sdk_refusal_reason(status)
                    path = str(scope["path"])
                    client = _client_of(scope)
                    self.gateway.refusals.refused(reason, status, agent=agent, server=server, path=path, client=client)
            await send(message)

        return noting

    async def _readyz(self, scope: Scope, receive: Receive, send: Send) -> None:
        report = await self.gateway.readiness()
        status = 200 if report["ready"] else 503
        if not self.gateway.may_read_status(request_header(scope, b"authorization")):
            # Strangers learn ready or not; server names, limits and exits are for operators.
            report = {"ready": report["ready"]}
        await JSONResponse(report, status_code=status)(scope, receive, send)

    async def _metadata(self, path: str, scope: Scope, receive: Receive, send: Send) -> None:
        # Answered for any well-formed name, configured or not, so this public document
        # does not tell an unauthenticated caller which servers exist.
        name, _, suffix = path.removeprefix(_METADATA_PREFIX).partition("/")
        if not SERVER_NAME.fullmatch(name) or suffix not in ("mcp", "sse"):
            await _not_found("no such protected resource")(scope, receive, send)
            return
        issuers = self.gateway.authorization_servers()
        await protected_resource_metadata(self.gateway.base_url, name, issuers)(scope, receive, send)


def _client_of(scope: Scope) -> str | None:
    client = scope.get("client")
    return str(client[0]) if client else None


def _not_found(message: str) -> Response:
    return Response(
        json.dumps({"error": "not_found", "error_description": message}), 404, media_type="application/json"
    )


def _refused(status: int, retry_after: float, message: str) -> Response:
    """429 (over `limits.requests_per_agent`) or 503 (its counters unavailable), with Retry-After."""
    body = {"error": "rate_limited" if status == 429 else "unavailable", "error_description": message}
    headers = {"Retry-After": str(max(1, math.ceil(retry_after)))}
    return Response(json.dumps(body), status, headers=headers, media_type="application/json")


async def _refuse_lifespan(receive: Receive, send: Send) -> None:
    # The gateway manages its own startup and shutdown; uvicorn runs with lifespan off.
    message: Any = await receive()
    if message["type"] == "lifespan.startup":
        await send({"type": "lifespan.startup.complete"})

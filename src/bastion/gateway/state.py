"""What a running gateway is made of, and what its parts ask of it: `GatewayState`.

`compose.assemble` fills it in, in the order a call flows; the admin API, the dashboard, the
metrics and the upstreams' message handlers are given its methods (`readiness`,
`restart_server`, `server_statuses`, ...), read when they are called. `Gateway` adds the
serving on top (`gateway.py`).
"""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc

from bastion.front.status_key import bearer_of, is_status_key
from bastion.guard.pipeline import ContentWithheld
from bastion.mcp_names import INVALID_REQUEST
from bastion.model import Principal, ToolCall
from bastion.observability.readings import ServerReading
from bastion.rpc_error import RpcError
from bastion.upstream.server_status import ServerStatus, server_status
from bastion.upstream.upstream import UpstreamUnavailable

if TYPE_CHECKING:
    from starlette.types import ASGIApp

    from bastion.admin.tokens import AdminTokenStore
    from bastion.alerts.dispatcher import AlertDispatcher
    from bastion.alerts.recent import RecentAlerts
    from bastion.approvals.events import EventSink
    from bastion.approvals.store import ApprovalStore
    from bastion.audit.bus import EventBus
    from bastion.auth.authenticator import Authenticator
    from bastion.auth.tokens import TokenStore
    from bastion.config import BastionConfig
    from bastion.front.http_app import ServerEndpoint
    from bastion.gateway.options import GatewayOptions
    from bastion.guard.pinning import PinStore
    from bastion.guard.pinning.audit_events import AuditedPinEvents
    from bastion.guard.pipeline import GuardPipeline
    from bastion.guard.ratelimit import RateLimitCheck
    from bastion.guard.results.build import ResultChecks
    from bastion.observability.wiring import GatewayObservability
    from bastion.proxy.aggregate import AggregateServer
    from bastion.proxy.in_flight import InFlightCalls
    from bastion.proxy.list_changes import ListChanges
    from bastion.proxy.proxy import ProxyServer
    from bastion.proxy.refusals import RefusalRecorder
    from bastion.runtime.events import RuntimeEventSink
    from bastion.runtime.supervisor import Supervisor
    from bastion.upstream.remote_watch import RemoteWatch
    from bastion.upstream.upstream import Upstream

logger = logging.getLogger(__name__)


class GatewayState:
    """One gateway's parts (built by `compose.assemble` when it starts) and the questions asked of them."""

    # The event bus and its subscribers.
    observability: GatewayObservability
    audit: EventBus
    """The event bus in front of the audit store: every room reports on it."""
    in_flight: InFlightCalls
    refusals: RefusalRecorder
    """`request.refused` events for what the front door turns away, coalesced per reason and minute."""
    runtime_sink: RuntimeEventSink
    events: EventSink
    """Approval events, onto the bus."""
    alerts: AlertDispatcher
    recent_alerts: RecentAlerts
    pin_events: AuditedPinEvents
    # The guard pipeline.
    pins: PinStore | None
    limits: RateLimitCheck | None
    results: ResultChecks | None
    pipeline: GuardPipeline
    # The front doors' credentials.
    authenticator: Authenticator

    def __init__(self, config: BastionConfig, options: GatewayOptions) -> None:
        self.config = config
        self.options = options
        self.local_principal = options.local_principal
        self.tokens: TokenStore | None = None
        self.approvals: ApprovalStore | None = None
        self.admin_tokens: AdminTokenStore | None = None
        self.admin_api: ASGIApp | None = None
        self.dashboard: ASGIApp | None = None
        self.upstreams: dict[str, Upstream] = {}
        self.servers: dict[str, ProxyServer] = {}
        self.aggregate: AggregateServer | None = None
        """`/mcp`: every server a credential reaches (bastion.proxy.aggregate)."""
        self.virtual_servers: dict[str, AggregateServer] = {}
        self.list_changes: ListChanges | None = None
        self.supervisors: dict[str, Supervisor] = {}
        """The launched servers' supervisors, by server name."""
        self.remote_watches: dict[str, RemoteWatch] = {}
        """The HTTP upstreams' health checks, by server name."""
        self.supervising: anyio.abc.TaskGroup | None = None
        """Where the supervisors and watches run (a restarted server's supervisor too)."""
        self.bound_port: int | None = None
        self.status_key: str | None = None
        """Opens `/readyz` in full, like an admin token (`bastion servers` reads it from data_dir)."""
        self._endpoints: dict[str, ServerEndpoint] = {}
        """The endpoints served over HTTP, while `serve_http` runs."""

    async def restart_server(self, name: str) -> str:
        """Clear the crash-loop hold on launched server `name` and start it now; its state after.

        Raises `KeyError` for an unknown server, `ValueError` when it is not held down (it is
        up, the supervisor is already restarting it, or Bastion does not launch it).
        """
        upstream = self.upstreams[name]
        supervisor = self.supervisors.get(name)
        if supervisor is None or self.supervising is None:
            raise ValueError(f"server {name!r} is not launched by Bastion (an HTTP server): nothing to restart")
        if not supervisor.held:
            raise ValueError(f"server {name!r} is not held down (state {upstream.state}); nothing to clear")
        supervisor.resume()
        logger.warning("server %s: crash-loop hold cleared by an admin; starting it", name)
        try:
            await upstream.ensure_started()
            self.servers[name].adopt_upstream_identity()
        except UpstreamUnavailable as exc:
            logger.error("%s", exc)  # the supervisor retries it with backoff, as after any failure
        self.supervising.start_soon(supervisor.run)
        return upstream.state

    async def start_upstreams(self) -> None:
        """Start every upstream at once; one that fails is logged (its supervisor or watch retries it)."""

        async def start(name: str) -> None:
            try:
                await self.upstreams[name].ensure_started()
            except UpstreamUnavailable as exc:
                logger.error("%s", exc)
                return
            self.servers[name].adopt_upstream_identity()

        async with anyio.create_task_group() as tg:
            for name in self.upstreams:
                tg.start_soon(start, name)

    @property
    def base_url(self) -> str:
        """Where agents reach this gateway: `public_url`, else the address actually bound."""
        config = self.config
        if config.public_url or self.bound_port is None:
            return config.base_url
        host = f"[{config.host}]" if ":" in config.host else config.host
        return f"http://{host}:{self.bound_port}"

    async def limits_usage(self) -> dict[str, Any]:
        """Each rate-limit counter in use and the calls in flight here (the admin API's `/limits`)."""
        if self.limits is None:
            return {"storage": None, "limits": []}
        rows = await self.limits.usage()
        storage = self.limits.counters.description if self.limits.counters is not None else None
        return {"storage": storage, "limits": [row.as_dict() for row in rows]}

    def may_read_status(self, authorization: str | None) -> bool:
        """Whether `/readyz` details may go to this `Authorization` header: an admin token or the status key."""
        token = bearer_of(authorization)
        if token is None:
            return False
        if is_status_key(token, self.status_key):
            return True
        return self.admin_tokens is not None and self.admin_tokens.verify(token) is not None

    async def readiness(self) -> dict[str, Any]:
        writable = await self.audit.check_writable()
        if not writable:
            self.audit.store_failed()
        statuses = self.server_statuses()
        report: dict[str, Any] = {
            "ready": writable and all(status.state == "up" for status in statuses),
            "audit_store": "writable" if writable else "failing",
            "servers": {status.name: status.state for status in statuses},
            "runtime": {status.name: status.runtime_report() for status in statuses},
        }
        restarting = [name for name, endpoint in self._endpoints.items() if endpoint.manager.restarting]
        if restarting:
            report["ready"] = False
            report["restarting_endpoints"] = restarting
        if self.config.database_url is not None:
            from bastion.state.postgres.health import shared_state_health  # psycopg only with database_url

            state = await anyio.to_thread.run_sync(shared_state_health, self.config.database_url)
            report["shared_state"] = state
            report["ready"] = report["ready"] and state != "unreachable"
        return report

    def server_readings(self) -> list[ServerReading]:
        """Each upstream's state for the metrics gauges (up, restarts, agent sessions)."""
        return [
            ServerReading(status.name, status.state == "up", status.restarts, self.servers[status.name].hub.agent_count)
            for status in self.server_statuses()
            if status.name in self.servers
        ]

    def server_statuses(self) -> list[ServerStatus]:
        """Each upstream's state, sandbox, limits in force, restarts and last exit, in configuration order."""
        return [
            server_status(name, self.config.servers[name], upstream, self.supervisors.get(name))
            for name, upstream in self.upstreams.items()
        ]

    def authorization_servers(self) -> list[str]:
        jwt = self.config.auth.jwt
        return [jwt.issuer] if jwt is not None else []

    def server_request_router(self, name: str) -> Any:
        """Where server `name`'s requests (sampling, elicitation, roots) go: to the agent whose call caused them."""

        async def route(method: str, params: dict[str, Any]) -> dict[str, Any]:
            if method == "sampling/createMessage":
                params = await self._check_server_request(name, method, params)
            return await self.servers[name].hub.relay_request(method, params)

        return route

    async def _check_server_request(self, name: str, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """A sampling request is text a server puts before the agent's model: it passes the result checks."""
        call = ToolCall(uuid.uuid4().hex, Principal(f"server:{name}", via="server"), name, method, params)
        try:
            return await self.pipeline.check_content(call, method, params)
        except ContentWithheld as exc:
            raise RpcError(INVALID_REQUEST, str(exc)) from exc

    def notification_router(self, name: str) -> Any:
        """What server `name`'s notifications are handed to: its agents, and the list-changed notices."""

        async def route(method: str, params: dict[str, Any]) -> None:
            server = self.servers.get(name)
            if server is None:
                return
            if method.endswith("/list_changed") or method == "notifications/message":
                server.adopt_upstream_identity()
            if method == "notifications/tools/list_changed":
                server.tools.invalidate()
            if self.list_changes is not None:
                self.list_changes.changed(method)
            await server.hub.broadcast(method, params)

        return route

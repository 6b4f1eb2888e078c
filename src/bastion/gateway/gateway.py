"""The gateway: configuration in, running front doors out.

`Gateway` opens the stores, starts one upstream session per configured server, builds a
`ProxyServer` for each, and serves them over HTTP (`serve_http`) or over stdio to a
single agent (`serve_stdio`, used by `bastion wrap`).
"""

from __future__ import annotations

import logging
import sys
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING, Any, TextIO

import anyio
import anyio.abc
from mcp_types import INVALID_REQUEST
from starlette.types import ASGIApp

from bastion.admin.api import AdminApi
from bastion.admin.tokens import AdminTokenStore
from bastion.alerts.dispatcher import AlertDispatcher
from bastion.alerts.from_events import EventAlerts
from bastion.alerts.recent import RecentAlerts
from bastion.approvals.audit_events import AuditedApprovalEvents
from bastion.approvals.events import EventSink, LoggingEventSink
from bastion.approvals.gate import ApprovalGate
from bastion.approvals.store import ApprovalStore
from bastion.audit.bus import EventBus
from bastion.auth.authenticator import Authenticator
from bastion.auth.tokens import TokenStore
from bastion.config import BastionConfig, StdioServerConfig
from bastion.front.embedded_server import EmbeddedServer
from bastion.front.http_app import AGGREGATE_NAME, GatewayApp, ServerEndpoint
from bastion.front.listening import bind_socket, running_url_file, stop_listening
from bastion.front.proxy_trust import uvicorn_proxy_options
from bastion.front.status_key import bearer_of, is_status_key, status_key_file, write_status_key
from bastion.gateway.assembly import config_loaded_event as config_loaded_event
from bastion.gateway.assembly import default_checks as default_checks
from bastion.gateway.assembly import jwt_settings as jwt_settings
from bastion.gateway.assembly import open_audit as open_audit
from bastion.guard.denial_alerts import call_denied_alerts, call_flagged_alerts
from bastion.guard.pinning import (
    LoggingPinEventSink,
    PinStore,
)
from bastion.guard.pinning.audit_events import AuditedPinEvents
from bastion.guard.pipeline import Check, ContentWithheld, GuardPipeline
from bastion.guard.policy.lint import policy_of
from bastion.guard.policy.sinks import SinkRules
from bastion.guard.ratelimit import LimitReporter, RateLimitCheck
from bastion.guard.results.build import ResultChecks, result_checks
from bastion.lazy_app import LazyApp
from bastion.model import Principal, ToolCall
from bastion.observability.readings import ServerReading
from bastion.observability.wiring import GatewayObservability
from bastion.proxy.aggregate import AggregateServer, aggregate_servers
from bastion.proxy.in_flight import InFlightCalls
from bastion.proxy.list_changes import ListChanges
from bastion.proxy.proxy import ProxyServer
from bastion.proxy.recording import CallRecorder
from bastion.proxy.refusals import WINDOW_SECONDS as REFUSAL_WINDOW_SECONDS
from bastion.proxy.refusals import RefusalRecorder
from bastion.relay import relay_enabled
from bastion.relay.host_checks import transport_security
from bastion.rpc_error import RpcError
from bastion.runtime.audit_events import AuditedRuntimeEvents
from bastion.runtime.egress.proxy import ResolverForTests
from bastion.runtime.events import LoggingSink, RuntimeEventSink
from bastion.runtime.prestart import PrestartedServer
from bastion.runtime.server_runtime import RuntimeSettings, ServerRuntime
from bastion.runtime.supervisor import Supervisor
from bastion.stdio_pipes import loop_driven_stdio
from bastion.stores import (
    open_admin_token_store,
    open_approval_store,
    open_pin_store,
    open_token_store,
)
from bastion.upstream.remote_watch import RemoteWatch
from bastion.upstream.server_status import ServerStatus, server_status
from bastion.upstream.upstream import Upstream, UpstreamUnavailable

if TYPE_CHECKING:  # imported where used: `bastion wrap` needs neither HTTP serving, JWT nor the dashboard
    from bastion.auth.jwt_auth import JwtVerifier

logger = logging.getLogger(__name__)


class Gateway:
    """Everything one Bastion process runs. Use `async with gateway.running(): ...`."""

    def __init__(
        self,
        config: BastionConfig,
        *,
        checks: Sequence[Check] | None = None,
        local_principal: Principal | None = None,
        errlog: TextIO | None = None,
        events: EventSink | None = None,
        runtime_sink: RuntimeEventSink | None = None,
        test_resolver: ResolverForTests | None = None,
        observability: GatewayObservability | None = None,
        prestarted: Mapping[str, PrestartedServer] | None = None,
    ) -> None:
        self.config = config
        self._prestarted = dict(prestarted or {})
        """Servers already started by `bastion wrap` (`runtime.prestart`), adopted by their upstreams."""
        # One event bus in front of the audit store: every room reports on it; the audit
        # writer, metrics and alerts subscribe (each room's own sink still gets its events).
        self.observability = observability if observability is not None else GatewayObservability(config)
        self.audit = EventBus(open_audit(config))
        self.observability.subscribe(self.audit)
        self.in_flight = InFlightCalls()
        self.refusals = RefusalRecorder(self.audit.emit)
        """`request.refused` events for what the front door turns away, coalesced per reason and minute."""
        self.runtime_sink: RuntimeEventSink = AuditedRuntimeEvents(
            self.audit, runtime_sink if runtime_sink is not None else LoggingSink(), self.in_flight.attribute
        )
        self._test_resolver = test_resolver
        self.pins: PinStore | None = None
        if checks is None and config.pinning.enabled:
            self.pins = open_pin_store(config)
        log = events if events is not None else LoggingEventSink()
        self.events: EventSink = AuditedApprovalEvents(self.audit, log)
        self.alerts = AlertDispatcher(config.alerts, log, self.audit)
        self.recent_alerts = RecentAlerts(self.alerts)
        self.audit.subscribe(EventAlerts(self.recent_alerts))
        self.pin_events = AuditedPinEvents(self.audit, LoggingPinEventSink())
        self.limits: RateLimitCheck | None = None
        if checks is None and config.limits.any:
            self.limits = RateLimitCheck(config.limits, reporter=LimitReporter(self.audit.emit, self.recent_alerts))
        self.results: ResultChecks | None = None
        if checks is None:
            untrusted = {name: server.untrusted for name, server in config.servers.items()}
            self.results = result_checks(
                config.results,
                untrusted,
                record=self.audit.emit,
                alerts=self.recent_alerts,
                shared_url=config.limits.storage if config.limits.shared else None,
                sinks=SinkRules(policy_of(config)),
            )
        self.pipeline = GuardPipeline(
            default_checks(config, self.pins, self.pin_events, self.limits, self.results) if checks is None else checks,
            on_deny=call_denied_alerts(self.recent_alerts),
            on_flag=call_flagged_alerts(self.recent_alerts, config.alerts.call_flagged),
        )
        self.pipeline.check_timer = self.observability.check_timer
        self.pipeline.approval_timer = self.observability.approval_timer
        self.approvals: ApprovalStore | None = None
        self.admin_api: ASGIApp | None = None
        self.dashboard: ASGIApp | None = None
        self.local_principal = local_principal
        self._errlog = errlog if errlog is not None else sys.stderr
        self.tokens: TokenStore | None = None
        self.authenticator: Authenticator
        self.upstreams: dict[str, Upstream] = {}
        self.servers: dict[str, ProxyServer] = {}
        self.supervisors: dict[str, Supervisor] = {}
        """The launched servers' supervisors, by server name."""
        self._supervising: anyio.abc.TaskGroup | None = None
        self.remote_watches: dict[str, RemoteWatch] = {}
        """The HTTP upstreams' health checks, by server name."""
        self.bound_port: int | None = None
        self.admin_tokens: AdminTokenStore | None = None
        self.status_key: str | None = None
        """Opens `/readyz` in full, like an admin token (`bastion servers` reads it from data_dir)."""
        self._endpoints: dict[str, ServerEndpoint] = {}
        self.aggregate: AggregateServer | None = None
        """`/mcp`: every server a credential reaches (bastion.proxy.aggregate)."""
        self.virtual_servers: dict[str, AggregateServer] = {}
        self.list_changes: ListChanges | None = None

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Gateway]:
        """Open the stores and start every upstream; stop them all on exit."""
        async with AsyncExitStack() as stack:
            stack.callback(self.observability.close)
            await self.audit.open()
            stack.push_async_callback(self.audit.close)
            await self.audit.record(config_loaded_event(self.config))
            if self.limits is not None and self.limits.counters is not None:
                stack.push_async_callback(self.limits.counters.aclose)
            if self.results is not None:
                stack.push_async_callback(self.results.taints.aclose)
            self.tokens = open_token_store(self.config)
            stack.callback(self.tokens.close)
            if self.pins is not None:
                stack.callback(self.pins.close)
            self.authenticator = Authenticator(self.tokens, self._jwt_verifier(), self._agent_servers())
            self.approvals = open_approval_store(self.config)
            stack.callback(self.approvals.close)
            gate = ApprovalGate(self.approvals, self.config.approvals, self.events, self.recent_alerts)
            self.pipeline.approvals = gate
            if self.results is not None:
                self.results.results.approvals = gate
            admin_tokens = open_admin_token_store(self.config)
            stack.callback(admin_tokens.close)
            self.admin_tokens = admin_tokens
            self.admin_api = AdminApi(
                self.approvals,
                admin_tokens,
                self.authenticator.authenticate,
                self.events,
                limits_usage=self.limits_usage,
                restart_server=self.restart_server,
                readiness=self.readiness,
            ).app
            if self.local_principal is None:  # `bastion wrap` serves stdio: no dashboard to build
                dashboard = partial(self._dashboard, admin_tokens)
                self.dashboard = LazyApp(dashboard, preload=["bastion.web.wiring"])  # built by its first page
            self.observability.attach(
                self.server_readings, self.approvals, admin_tokens, self.authenticator.authenticate
            )
            background = await stack.enter_async_context(anyio.create_task_group())
            stack.callback(background.cancel_scope.cancel)
            stack.callback(self.refusals.flush, everything=True)  # before the audit store closes
            background.start_soon(self._flush_refusals)
            background.start_soon(self.alerts.run)
            background.start_soon(gate.run_sweeper)
            recorder = CallRecorder(
                self.audit,
                refuse_on_failure=self.config.audit.on_failure == "refuse",
                on_failure=self.audit.store_failed,
                in_flight=self.in_flight,
                tracer=self.observability.tracer,
                refusals=self.refusals,
            )
            settings = RuntimeSettings(
                self.config.data_dir,
                config_file=self.config.source if self.config.source.is_file() else None,
                sink=self.runtime_sink,
                test_resolver=self._test_resolver,
                console=self._errlog,
            )
            for name, server_config in self.config.servers.items():
                runtime = None
                if isinstance(server_config, StdioServerConfig):
                    runtime = ServerRuntime(name, server_config, settings)
                    await stack.enter_async_context(runtime.running())
                upstream = Upstream(
                    name,
                    server_config,
                    on_server_request=self._server_request_router(name),
                    on_notification=self._notification_router(name),
                    errlog=self._errlog,
                    runtime=runtime,
                    prestarted=self._prestarted.pop(name, None) if runtime is not None else None,
                )
                await stack.enter_async_context(upstream.running())
                self.upstreams[name] = upstream
                self.servers[name] = ProxyServer(
                    upstream, self.pipeline, recorder, local_principal=self.local_principal
                )
            self.aggregate, self.virtual_servers = aggregate_servers(
                self.config, self.servers, recorder, self.local_principal
            )
            self.list_changes = ListChanges([self.aggregate, *self.virtual_servers.values()])
            background.start_soon(self.list_changes.run)
            for upstream in self.upstreams.values():
                upstream.on_availability = self.list_changes.availability
            await self._start_upstreams()
            supervising = await stack.enter_async_context(anyio.create_task_group())
            stack.callback(supervising.cancel_scope.cancel)
            self._supervising = supervising
            for name, upstream in self.upstreams.items():
                server_config = self.config.servers[name]
                if isinstance(server_config, StdioServerConfig):
                    supervisor = Supervisor(upstream, server_config.health, server_config.restart, self.runtime_sink)
                    self.supervisors[name] = supervisor
                    supervising.start_soon(supervisor.run)
                else:
                    self.remote_watches[name] = watch = RemoteWatch(upstream, server_config.health, self.runtime_sink)
                    supervising.start_soon(watch.run)
            yield self

    async def _flush_refusals(self) -> None:
        while True:
            await anyio.sleep(REFUSAL_WINDOW_SECONDS)
            self.refusals.flush()

    async def restart_server(self, name: str) -> str:
        """Clear the crash-loop hold on launched server `name` and start it now; its state after.

        Raises `KeyError` for an unknown server, `ValueError` when it is not held down (it is
        up, the supervisor is already restarting it, or Bastion does not launch it).
        """
        upstream = self.upstreams[name]
        supervisor = self.supervisors.get(name)
        if supervisor is None or self._supervising is None:
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
        self._supervising.start_soon(supervisor.run)
        return upstream.state

    async def _start_upstreams(self) -> None:
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

    async def serve_http(self, *, ready: anyio.Event | None = None, handle_signals: bool = True) -> None:
        """Serve every server over HTTP until SIGINT/SIGTERM (with `handle_signals`) or cancellation.

        The listening socket is bound before `ready` is set, so a client may connect as
        soon as it is; `bound_port` tells the port when the config asked for port 0.
        `handle_signals=False` leaves SIGINT and SIGTERM to the program that embeds the
        gateway (a test run's Ctrl-C then interrupts at once instead of stopping only the
        gateway, and is not lost when the serving is cancelled before uvicorn re-raises it).
        """
        config = self.config
        security = transport_security(config.host, config.public_url)
        served: dict[str, ProxyServer | AggregateServer] = {**self.servers, **self.virtual_servers}
        relay = relay_enabled()
        endpoints = {
            name: ServerEndpoint(server, max_body_bytes=config.max_body_bytes, security=security, relay=relay)
            for name, server in served.items()
        }
        aggregate = None
        if self.aggregate is not None:
            aggregate = ServerEndpoint(
                self.aggregate, max_body_bytes=config.max_body_bytes, security=security, relay=relay
            )
        sock = bind_socket(config.host, config.port)
        self.bound_port = sock.getsockname()[1]
        sockets = [sock]
        metrics_address = self.observability.listener_wanted
        if metrics_address is not None:
            try:
                sockets.append(bind_socket(*metrics_address))
            except OSError:
                sock.close()
                raise
            self.observability.listening_on(sockets[-1].getsockname()[:2])
        url_file = running_url_file(config)
        # With every store in PostgreSQL and no stdio server, nothing else creates data_dir.
        url_file.parent.mkdir(parents=True, exist_ok=True)
        url_file.write_text(self.base_url + "\n", encoding="utf-8")
        key_file = status_key_file(config)
        self.status_key = write_status_key(key_file)
        import uvicorn

        uv_config = uvicorn.Config(
            GatewayApp(self, endpoints, aggregate),
            lifespan="off",
            ws="none",  # no WebSocket route: the websockets library stays unimported
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=5,
            **uvicorn_proxy_options(config.trusted_proxies),
        )
        server = uvicorn.Server(uv_config) if handle_signals else EmbeddedServer(uv_config)
        self._endpoints = endpoints if aggregate is None else {**endpoints, AGGREGATE_NAME: aggregate}
        try:
            # Each session manager runs in a task of its own, not in this one: a manager whose
            # task group fails is replaced (see kept_manager), and does not cancel the serving.
            # Each starts with its first request (the relay serves most; see kept_manager).
            async with anyio.create_task_group() as managers:
                for endpoint in self._endpoints.values():
                    endpoint.manager.serve_in(managers)
                if ready is not None:
                    ready.set()
                try:
                    await server.serve(sockets=sockets)
                except BaseException:
                    # Serving was cancelled (a failure elsewhere is taking the gateway down):
                    # uvicorn skips its shutdown then, so stop taking requests now rather than
                    # answer them with half the gateway gone.
                    stop_listening(server)
                    raise
                managers.cancel_scope.cancel()
        finally:
            for endpoint in self._endpoints.values():
                if endpoint.relay is not None:
                    await endpoint.relay.close()
                if endpoint.relay_sse is not None:
                    await endpoint.relay_sse.close()
            self._endpoints = {}
            self.observability.listening_on(None)
            for listening in sockets:
                listening.close()
            url_file.unlink(missing_ok=True)
            key_file.unlink(missing_ok=True)

    async def serve_stdio(self, server_name: str | None) -> None:
        """Serve one server (None: every server, as `/mcp`) to the agent on stdin/stdout (`bastion wrap`)."""
        server: ProxyServer | AggregateServer | None = (
            self.servers[server_name] if server_name is not None else self.aggregate
        )
        assert server is not None, "serve_stdio runs inside running()"
        async with loop_driven_stdio() as (stdin, stdout):
            principal = self.local_principal
            if stdin is not None and principal is not None and relay_enabled():
                # Over pipes, Bastion's own relay serves the agent, in either era, for one server
                # or all (`--all`); the SDK's stack is the reference (`BASTION_RELAY=0`).
                from bastion.relay.aggregate import AggregateRelay
                from bastion.relay.flow_server import FlowServer
                from bastion.relay.relay import Relay
                from bastion.relay.stdio_front import StdioFront

                served: FlowServer = (
                    Relay(server, server.recorder) if isinstance(server, ProxyServer) else AggregateRelay(server)
                )
                await StdioFront(served, principal).serve(stdin, stdout)
                return
            from mcp.server.stdio import stdio_server

            async with stdio_server(stdin, stdout) as (read, write):
                sdk = server.sdk
                await sdk.run(read, write, sdk.create_initialization_options())

    def _dashboard(self, admin_tokens: AdminTokenStore) -> ASGIApp:
        """The dashboard, given the services it reads and acts on (not the gateway)."""
        from bastion.web.services import DashboardServices
        from bastion.web.wiring import SECRET_FILE, RateLimitUsage, gateway_dashboard

        assert self.approvals is not None
        assert self.tokens is not None
        services = DashboardServices(
            config=self.config,
            audit=self.audit,
            approvals=self.approvals,
            approval_events=self.events,
            admin_tokens=admin_tokens,
            tokens=self.tokens,
            policy=policy_of(self.config),
            servers=self.server_statuses,
            alerts=self.recent_alerts,
            secret_file=self.config.data_dir / SECRET_FILE,
            pins=self.pins,
            pin_events=self.pin_events,
            usage=RateLimitUsage(self.limits) if self.limits is not None else None,
        )
        return gateway_dashboard(services).app

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

    def _jwt_verifier(self) -> JwtVerifier | None:
        jwt = self.config.auth.jwt
        if jwt is None:
            return None
        from bastion.auth.jwt_auth import JwtVerifier

        return JwtVerifier(jwt_settings(jwt))

    def _agent_servers(self) -> dict[str, frozenset[str] | None]:
        return {name: agent.servers for name, agent in self.config.agents.items()}

    def _server_request_router(self, name: str) -> Any:
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

    def _notification_router(self, name: str) -> Any:
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

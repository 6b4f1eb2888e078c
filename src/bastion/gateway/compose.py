"""The composition root: `assemble` builds everything one gateway runs, in one function.

Read it top to bottom to meet the parts in the order a call meets them: the event bus and
its subscribers, the guard pipeline, the stores, the recorder, the upstreams and the MCP
servers agents talk to, then what the front doors serve besides them (the admin API, the
dashboard, `/metrics`). What can refuse the configuration is built before the audit log is
opened; everything opened is closed by the exit stack, in reverse.
"""

from __future__ import annotations

import sys
from contextlib import AsyncExitStack
from functools import partial
from typing import TYPE_CHECKING

import anyio

from bastion.admin.tokens import AdminTokenStore
from bastion.alerts.dispatcher import AlertDispatcher
from bastion.alerts.from_events import EventAlerts
from bastion.alerts.recent import RecentAlerts
from bastion.approvals.audit_events import AuditedApprovalEvents
from bastion.approvals.events import LoggingEventSink
from bastion.approvals.gate import ApprovalGate
from bastion.audit.bus import EventBus
from bastion.auth.authenticator import Authenticator
from bastion.config import BastionConfig, StdioServerConfig
from bastion.gateway.assembly import config_loaded_event, default_checks, jwt_settings, open_audit
from bastion.gateway.state import GatewayState
from bastion.guard.denial_alerts import call_denied_alerts, call_flagged_alerts
from bastion.guard.pinning import LoggingPinEventSink
from bastion.guard.pinning.audit_events import AuditedPinEvents
from bastion.guard.pipeline import GuardPipeline
from bastion.guard.policy.lint import policy_of
from bastion.guard.policy.sinks import SinkRules
from bastion.guard.ratelimit import LimitReporter, RateLimitCheck
from bastion.guard.results.build import result_checks
from bastion.lazy_app import LazyApp
from bastion.observability.wiring import GatewayObservability
from bastion.proxy.aggregate import aggregate_servers
from bastion.proxy.in_flight import InFlightCalls
from bastion.proxy.list_changes import ListChanges
from bastion.proxy.proxy import ProxyServer
from bastion.proxy.recording import CallRecorder
from bastion.proxy.refusals import WINDOW_SECONDS as REFUSAL_WINDOW_SECONDS
from bastion.proxy.refusals import RefusalRecorder
from bastion.runtime.audit_events import AuditedRuntimeEvents
from bastion.runtime.events import LoggingSink
from bastion.runtime.server_runtime import RuntimeSettings, ServerRuntime
from bastion.runtime.supervisor import Supervisor
from bastion.stores import open_admin_token_store, open_approval_store, open_pin_store, open_token_store
from bastion.upstream.remote_watch import RemoteWatch
from bastion.upstream.upstream import Upstream

if TYPE_CHECKING:  # imported where used: `bastion wrap` needs neither HTTP serving, JWT nor the dashboard
    from starlette.types import ASGIApp

    from bastion.approvals.store import ApprovalStore
    from bastion.auth.jwt_auth import JwtVerifier


async def assemble(gateway: GatewayState, stack: AsyncExitStack) -> None:
    """Build and start every part of `gateway` from its configuration and options.

    What is opened or started is pushed onto `stack`, which closes it all when the gateway
    stops. Raises `ConfigError` for a configuration its parts refuse, before the audit log is opened.
    """
    config, options = gateway.config, gateway.options
    errlog = options.errlog if options.errlog is not None else sys.stderr

    # The event bus in front of the audit store: every room reports on it; the audit writer,
    # metrics and alerts subscribe (each room's own sink still gets its events).
    observability = options.observability if options.observability is not None else GatewayObservability(config)
    gateway.observability = observability
    gateway.audit = audit = EventBus(open_audit(config))
    observability.subscribe(audit)
    gateway.in_flight = in_flight = InFlightCalls()
    gateway.refusals = refusals = RefusalRecorder(audit.emit)
    runtime_log = options.runtime_sink if options.runtime_sink is not None else LoggingSink()
    gateway.runtime_sink = runtime_sink = AuditedRuntimeEvents(audit, runtime_log, in_flight.attribute)
    log = options.events if options.events is not None else LoggingEventSink()
    gateway.events = approval_events = AuditedApprovalEvents(audit, log)
    gateway.alerts = alerts = AlertDispatcher(config.alerts, log, audit)
    gateway.recent_alerts = recent_alerts = RecentAlerts(alerts)
    audit.subscribe(EventAlerts(recent_alerts))
    gateway.pin_events = pin_events = AuditedPinEvents(audit, LoggingPinEventSink())

    # The guard pipeline: the configured checks in order (docs/architecture.md), or the caller's.
    configured = options.checks is None
    pins = open_pin_store(config) if configured and config.pinning.enabled else None
    limits = None
    if configured and config.limits.any:
        limits = RateLimitCheck(config.limits, reporter=LimitReporter(audit.emit, recent_alerts))
    results = None
    if configured:
        results = result_checks(
            config.results,
            {name: server.untrusted for name, server in config.servers.items()},
            record=audit.emit,
            alerts=recent_alerts,
            shared_url=config.limits.storage if config.limits.shared else None,
            sinks=SinkRules(policy_of(config)),
        )
    pipeline = GuardPipeline(
        default_checks(config, pins, pin_events, limits, results) if options.checks is None else options.checks,
        on_deny=call_denied_alerts(recent_alerts),
        on_flag=call_flagged_alerts(recent_alerts, config.alerts.call_flagged),
    )
    pipeline.check_timer = observability.check_timer
    pipeline.approval_timer = observability.approval_timer
    gateway.pins, gateway.limits, gateway.results, gateway.pipeline = pins, limits, results, pipeline

    # The stores, opened (the audit log first: `config.loaded` is its first record), and what
    # reads them: the authenticator, the approval gate.
    stack.callback(observability.close)
    await audit.open()
    stack.push_async_callback(audit.close)
    await audit.record(config_loaded_event(config))
    if limits is not None and limits.counters is not None:
        stack.push_async_callback(limits.counters.aclose)
    if results is not None:
        stack.push_async_callback(results.taints.aclose)
    gateway.tokens = tokens = open_token_store(config)
    stack.callback(tokens.close)
    if pins is not None:
        stack.callback(pins.close)
    gateway.authenticator = authenticator = Authenticator(tokens, _jwt_verifier(config), _agent_servers(config))
    gateway.approvals = approvals = open_approval_store(config)
    stack.callback(approvals.close)
    gate = ApprovalGate(approvals, config.approvals, approval_events, recent_alerts)
    pipeline.approvals = gate
    if results is not None:
        results.results.approvals = gate
    gateway.admin_tokens = admin_tokens = open_admin_token_store(config)
    stack.callback(admin_tokens.close)

    # Background work, cancelled before the stores above close.
    background = await stack.enter_async_context(anyio.create_task_group())
    stack.callback(background.cancel_scope.cancel)
    stack.callback(refusals.flush, everything=True)  # before the audit store closes
    background.start_soon(_flush_refusals, refusals)
    background.start_soon(alerts.run)
    background.start_soon(gate.run_sweeper)

    # The recorder (audit, the outermost hook of every call), then per server: its sandbox and
    # runtime (a launched server), its shared upstream session, the MCP server agents talk to.
    recorder = CallRecorder(
        audit,
        refuse_on_failure=config.audit.on_failure == "refuse",
        on_failure=audit.store_failed,
        in_flight=in_flight,
        tracer=observability.tracer,
        refusals=refusals,
    )
    settings = RuntimeSettings(
        config.data_dir,
        config_file=config.source if config.source.is_file() else None,
        sink=runtime_sink,
        test_resolver=options.test_resolver,
        console=errlog,
    )
    prestarted = dict(options.prestarted)
    for name, server_config in config.servers.items():
        runtime = None
        if isinstance(server_config, StdioServerConfig):
            runtime = ServerRuntime(name, server_config, settings)
            await stack.enter_async_context(runtime.running())
        upstream = Upstream(
            name,
            server_config,
            on_server_request=gateway.server_request_router(name),
            on_notification=gateway.notification_router(name),
            errlog=errlog,
            runtime=runtime,
            prestarted=prestarted.pop(name, None) if runtime is not None else None,
        )
        await stack.enter_async_context(upstream.running())
        gateway.upstreams[name] = upstream
        gateway.servers[name] = ProxyServer(upstream, pipeline, recorder, local_principal=gateway.local_principal)

    # `/mcp` and the virtual servers over them, told when a server's lists change.
    aggregate, gateway.virtual_servers = aggregate_servers(config, gateway.servers, recorder, gateway.local_principal)
    gateway.aggregate = aggregate
    gateway.list_changes = list_changes = ListChanges([aggregate, *gateway.virtual_servers.values()])
    background.start_soon(list_changes.run)
    for upstream in gateway.upstreams.values():
        upstream.on_availability = list_changes.availability

    # Start the upstreams, then watch them: a supervisor per launched server, a health watch per remote one.
    await gateway.start_upstreams()
    supervising = await stack.enter_async_context(anyio.create_task_group())
    stack.callback(supervising.cancel_scope.cancel)
    gateway.supervising = supervising
    for name, upstream in gateway.upstreams.items():
        server_config = config.servers[name]
        if isinstance(server_config, StdioServerConfig):
            supervisor = Supervisor(upstream, server_config.health, server_config.restart, runtime_sink)
            gateway.supervisors[name] = supervisor
            supervising.start_soon(supervisor.run)
        else:
            gateway.remote_watches[name] = watch = RemoteWatch(upstream, server_config.health, runtime_sink)
            supervising.start_soon(watch.run)

    # What the HTTP front door serves besides the MCP servers: the admin API, the dashboard
    # (`bastion wrap` serves stdio: none built), `/metrics`.
    # The admin API is built by its first request, as the dashboard is (starlette's application
    # stack is not loaded by `bastion wrap`, nor by a gateway nobody administers over HTTP).
    admin_api = partial(_admin_api, gateway, approvals, admin_tokens, authenticator, approval_events)
    gateway.admin_api = LazyApp(admin_api, preload=["bastion.admin.api"])
    if gateway.local_principal is None:
        dashboard = partial(_dashboard, gateway, admin_tokens)
        gateway.dashboard = LazyApp(dashboard, preload=["bastion.web.wiring"])  # built by its first page
    observability.attach(gateway.server_readings, approvals, admin_tokens, authenticator.authenticate)


def _admin_api(
    gateway: GatewayState,
    approvals: ApprovalStore,
    admin_tokens: AdminTokenStore,
    authenticator: Authenticator,
    approval_events: AuditedApprovalEvents,
) -> ASGIApp:
    from bastion.admin.api import AdminApi

    return AdminApi(
        approvals,
        admin_tokens,
        authenticator.authenticate,
        approval_events,
        limits_usage=gateway.limits_usage,
        restart_server=gateway.restart_server,
        readiness=gateway.readiness,
    ).app


async def _flush_refusals(refusals: RefusalRecorder) -> None:
    while True:
        await anyio.sleep(REFUSAL_WINDOW_SECONDS)
        refusals.flush()


def _jwt_verifier(config: BastionConfig) -> JwtVerifier | None:
    jwt = config.auth.jwt
    if jwt is None:
        return None
    from bastion.auth.jwt_auth import JwtVerifier

    return JwtVerifier(jwt_settings(jwt))


def _agent_servers(config: BastionConfig) -> dict[str, frozenset[str] | None]:
    return {name: agent.servers for name, agent in config.agents.items()}


def _dashboard(gateway: GatewayState, admin_tokens: AdminTokenStore) -> ASGIApp:
    """The dashboard, given the services it reads and acts on (not the gateway)."""
    from bastion.web.services import DashboardServices
    from bastion.web.wiring import SECRET_FILE, RateLimitUsage, gateway_dashboard

    assert gateway.approvals is not None
    assert gateway.tokens is not None
    config = gateway.config
    services = DashboardServices(
        config=config,
        audit=gateway.audit,
        approvals=gateway.approvals,
        approval_events=gateway.events,
        admin_tokens=admin_tokens,
        tokens=gateway.tokens,
        policy=policy_of(config),
        servers=gateway.server_statuses,
        alerts=gateway.recent_alerts,
        secret_file=config.data_dir / SECRET_FILE,
        pins=gateway.pins,
        pin_events=gateway.pin_events,
        usage=RateLimitUsage(gateway.limits) if gateway.limits is not None else None,
    )
    return gateway_dashboard(services).app

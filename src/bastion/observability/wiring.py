"""How the gateway plugs its observers in: one object, built from the config, asked four things.

`subscribe(bus)` subscribes the metrics to the gateway's event bus, `check_timer` goes to the
guard pipeline, `attach(...)` gives the gauges what to read and builds the `/metrics`
endpoint, and `listener_wanted` says where `metrics.listen` wants a socket of its own (the
gateway serves it beside its own, and routes what arrives there with `serves_listener`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from bastion.audit.bus import EventBus
from bastion.audit.store import AuditStore
from bastion.audit.writer_front import WriterFront
from bastion.config_errors import ConfigError, split_listen
from bastion.observability.config import ObservedConfig, TracingConfig, tracing_wanted
from bastion.observability.readings import LiveReadings, ServerReading

if TYPE_CHECKING:
    from starlette.types import Scope

    from bastion.admin.tokens import AdminTokenStore
    from bastion.approvals.store import ApprovalStore
    from bastion.guard.pipeline import CheckTimer
    from bastion.observability.metrics import GatewayMetrics
    from bastion.observability.metrics_http import AgentAuthenticator, MetricsEndpoint, MetricsOnlyApp
    from bastion.observability.tracing import CallTracer


def open_tracer(settings: TracingConfig, source: Path) -> CallTracer | None:
    """The tracer the settings and `OTEL_*` variables ask for; None when tracing is off.

    Asked for explicitly (`enabled: true`) without the `otel` extra installed, it is an error
    that names the fix; asked for only by the environment, a warning.
    """
    environ = os.environ
    explicit = settings.enabled is True
    if not tracing_wanted(settings, environ):  # off: the OpenTelemetry SDK is not even imported
        return None
    try:
        from bastion.observability.tracing import CallTracer, provider_for
    except ImportError as exc:
        if explicit:
            raise ConfigError(
                source,
                "observability.tracing.enabled",
                f"tracing is on but OpenTelemetry is not installed ({exc})",
                "install it: pip install 'bastion-mcp[otel]', or set enabled: false",
            ) from exc
        if any(name.startswith("OTEL_") for name in environ):  # they name an exporter: tracing was wanted
            logger.warning(
                "OTEL_* variables are set but OpenTelemetry is not installed: pip install 'bastion-mcp[otel]'"
            )

        return None
    provider = provider_for(settings)
    return CallTracer(provider) if provider is not None else None


logger = logging.getLogger(__name__)


class GatewayObservability:
    """The metrics (None when `metrics.enabled` is off) and the tracer (None unless tracing is on) of one gateway."""

    def __init__(self, config: ObservedConfig, *, tracer: CallTracer | None = None) -> None:
        self.config = config
        settings = config.metrics
        self.metrics: GatewayMetrics | None = None
        if settings.enabled:  # prometheus_client is imported only when metrics are on
            from bastion.observability.metrics import GatewayMetrics

            self.metrics = GatewayMetrics(config.servers, per_agent=settings.per_agent)
        self.tracer = tracer if tracer is not None else open_tracer(config.observability.tracing, config.source)
        self.endpoint: MetricsEndpoint | None = None
        self.listener: MetricsOnlyApp | None = None
        self.listener_address: tuple[str, int] | None = None
        self.store: AuditStore | None = None

    def subscribe(self, bus: EventBus) -> None:
        """Subscribe the metrics to every event on `bus` (the gateway's event bus, in front of its audit store)."""
        self.store = bus.inner
        if self.metrics is not None:
            bus.subscribe(self.metrics)

    @property
    def check_timer(self) -> CheckTimer | None:
        """What the guard pipeline tells each check's duration (metrics and traces)."""
        timers = [t for t in (self.metrics and self.metrics.check_timed, self.tracer and self.tracer.check_took) if t]
        if len(timers) < 2:
            return timers[0] if timers else None
        metrics, traces = timers

        def both(check: str, seconds: float) -> None:
            metrics(check, seconds)
            traces(check, seconds)

        return both

    @property
    def approval_timer(self) -> Callable[[float], None] | None:
        return self.tracer.approval_took if self.tracer is not None else None

    def close(self) -> None:
        """Export the spans still buffered (at shutdown)."""
        if self.tracer is not None:
            self.tracer.shutdown()

    def attach(
        self,
        servers: Callable[[], Iterable[ServerReading]],
        approvals: ApprovalStore,
        admin_tokens: AdminTokenStore,
        agents: AgentAuthenticator,
    ) -> None:
        """Read the gauges through `servers` and `approvals`; serve `/metrics` to `admin_tokens`."""
        if self.metrics is None:
            return
        from bastion.approvals.model import ApprovalState
        from bastion.observability.metrics_http import MetricsEndpoint, MetricsOnlyApp

        audit = self.store
        self.metrics.attach(
            LiveReadings(
                servers=servers,
                approvals_pending=lambda: len(approvals.list(ApprovalState.PENDING)),
                audit_queue_depth=lambda: audit.queue_depth if isinstance(audit, WriterFront) else 0,
            )
        )
        self.endpoint = MetricsEndpoint(
            self.metrics.registry, admin=lambda token: admin_tokens.verify(token) is not None, agents=agents
        )
        self.listener = MetricsOnlyApp(MetricsEndpoint(self.metrics.registry))

    @property
    def listener_wanted(self) -> tuple[str, int] | None:
        """Where `metrics.listen` asks for a listener of its own (None: not configured)."""
        listen = self.config.metrics.listen
        if self.metrics is None or listen is None:
            return None
        return split_listen(listen)

    def listening_on(self, address: tuple[str, int] | None) -> None:
        """The `metrics.listen` socket's bound address (None once it is closed)."""
        self.listener_address = address

    def serves_listener(self, scope: Scope) -> bool:
        """Whether this request came in on the `metrics.listen` socket."""
        server = scope.get("server")
        return self.listener_address is not None and server is not None and server[1] == self.listener_address[1]
